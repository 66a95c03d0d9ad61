//! A PostgreSQL database of one test's own, created on the suite's server
//! and dropped (forcibly) when the test is done. Shared by the test binaries
//! (`#[path]`-included: `tests/support/` is not a test target of its own).

use sqlx::Connection;

/// A PostgreSQL database created for one test on the suite's server, dropped after.
pub struct PgDatabase {
    server_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(server_url: &str) -> PgDatabase {
        let name = format!("marginalia_test_{}", uuid::Uuid::new_v4().simple());
        let mut connection = sqlx::PgConnection::connect(server_url)
            .await
            .expect("connecting to the PostgreSQL test server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .expect("creating the test database");
        let _ = connection.close().await;
        let mut url = url::Url::parse(server_url).expect("a PostgreSQL URL");
        url.set_path(&name);
        PgDatabase {
            server_url: server_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (server_url, name) = (self.server_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a runtime of our own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&server_url).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut connection)
                .await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
