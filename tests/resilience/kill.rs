//! kill -9 under write load: every acknowledged comment is there after a restart.

use std::collections::HashMap;
use std::time::Duration;

use crate::harness::*;
use crate::pg_database::PgDatabase;

/// Concurrent writers while the process is killed.
const WRITERS: usize = 32;
/// Kill once this many submissions (of this round) were acknowledged: early,
/// in full flow, and later, so the crash lands at different moments of the
/// group commit.
const KILL_AFTER_ACKS: [usize; 3] = [1, 150, 600];

/// Runs the kill rounds on one database, checking after each restart.
async fn kill_rounds(launch: &Launch, sqlite: bool) {
    let mut acknowledged: HashMap<i64, String> = HashMap::new();
    for (round, &threshold) in KILL_AFTER_ACKS.iter().enumerate() {
        let mut server = Server::start(launch).await;
        let load = WriteLoad::start(&server.base, WRITERS, &format!("kill round {round}"));
        load.wait_for_acks(threshold).await;
        // A further few milliseconds in (varying by round) so the signal does
        // not always land right after a response.
        tokio::time::sleep(Duration::from_millis(7 * round as u64)).await;
        server.kill9();
        let outcome = load.finish().await;
        assert!(
            outcome.other_statuses.is_empty(),
            "answers other than 202 under load: {:?}",
            &outcome.other_statuses[..outcome.other_statuses.len().min(5)]
        );
        let round_acks = outcome.acknowledged.len();
        for (id, body) in outcome.acknowledged {
            assert!(
                acknowledged.insert(id, body).is_none(),
                "id {id} acknowledged twice"
            );
        }

        let server = Server::start(launch).await;
        let stored = server.all_comments("pending").await;
        let unacknowledged = assert_all_stored(&acknowledged, &stored);
        eprintln!(
            "kill -9 round {round}: {round_acks} acknowledged this round ({} in all), {} stored, \
             {unacknowledged} stored without an acknowledgement (in flight), {} requests without a response, \
             {} cut-off responses",
            acknowledged.len(),
            stored.len(),
            outcome.no_response,
            outcome.incomplete
        );
        if sqlite {
            assert_eq!(sqlite_integrity(&server.database_url).await, ["ok"]);
        }
        server.assert_no_panic();
        // Killed idle when dropped; the next round starts on what it left.
        drop(server);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_nothing_acknowledged_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("marginalia.db").display());
    kill_rounds(&Launch::new(&url, dir.path()), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_write_load_loses_nothing_acknowledged_postgres() {
    let Some(server_url) = postgres_server_url() else {
        eprintln!("kill_9 on PostgreSQL: skipped: needs MARGINALIA_TEST_DATABASE_URL");
        return;
    };
    let database = PgDatabase::create(&server_url).await;
    let dir = tempfile::tempdir().unwrap();
    kill_rounds(&Launch::new(&database.url, dir.path()), false).await;
}
