//! The store's own contract where the HTTP API cannot reach it yet: an insert
//! takes the status its caller decided.

use marginalia::domain::{AuthorName, CommentBody, Email, NewComment, Status, ThreadUri};
use marginalia::store::{Store, StoreChange};
use tokio::sync::mpsc;

use crate::helpers::*;

pub(crate) fn new_comment(uri: &str, body: &str, parent_id: Option<i64>) -> NewComment {
    NewComment {
        uri: ThreadUri::parse(uri).unwrap(),
        parent_id,
        name: AuthorName::parse("Ada").unwrap(),
        email: Email::parse("ada@example.org").unwrap(),
        website: None,
        body: CommentBody::parse(body).unwrap(),
        ip: None,
        user_agent: None,
        wants_replies: false,
        lang: None,
        referrer: None,
    }
}

pub(crate) async fn open_store(database: &TestDatabase) -> Store {
    let store = Store::connect(database.url()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn thread_ids(page: &marginalia::store::ThreadPage) -> Vec<i64> {
    page.comments.iter().map(|comment| comment.id).collect()
}

#[tokio::test]
async fn an_insert_stores_the_status_it_is_given() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let store = open_store(&database).await;
        let uri = ThreadUri::parse("/st/").unwrap();

        let approved = store
            .insert_comment(
                &new_comment("/st/", "approved at once", None),
                Status::Approved,
                false,
            )
            .await
            .unwrap()
            .expect("no parent to refuse");
        assert_eq!(approved.status, Status::Approved);
        assert_eq!(approved.moderated_at, None, "nobody moderated it");
        assert_eq!(approved.moderated_by, None);
        let pending = store
            .insert_comment(&new_comment("/st/", "waits", None), Status::Pending, false)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(pending.status, Status::Pending);

        let page = store.approved_thread(&uri, None, 10).await.unwrap();
        assert_eq!(thread_ids(&page), [approved.id]);
        assert_eq!(page.total, 1);
        // An approved insert is a valid parent at once.
        let reply = store
            .insert_comment(
                &new_comment("/st/", "reply", Some(approved.id)),
                Status::Spam,
                false,
            )
            .await
            .unwrap()
            .expect("the parent is approved");
        assert_eq!(reply.status, Status::Spam);
        assert_eq!(
            store.status_counts().await.unwrap(),
            [(Status::Approved, 1), (Status::Pending, 1), (Status::Spam, 1)].into()
        );
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_pairs_each_comment_with_the_row_of_its_own_status() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let store = open_store(&database).await;
        // Identical content, different statuses: only the status tells them apart.
        let comment = new_comment("/pair/", "same words", None);
        let orphan = new_comment("/pair/", "no such parent", Some(999_999));
        let statuses = [
            Status::Pending,
            Status::Approved,
            Status::Rejected,
            Status::Approved,
        ];
        let mut batch: Vec<(&NewComment, Status)> =
            statuses.iter().map(|&status| (&comment, status)).collect();
        batch.insert(2, (&orphan, Status::Approved));

        let stored = store.insert_comments(&batch, false).await.unwrap();
        assert_eq!(stored.len(), 5);
        assert!(stored[2].is_none(), "a reply to no approved comment is refused");
        let stored: Vec<_> = stored.into_iter().flatten().collect();
        assert_eq!(stored.iter().map(|c| c.status).collect::<Vec<_>>(), statuses);
        let mut ids: Vec<i64> = stored.iter().map(|c| c.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4, "one row each");
        let page = store
            .approved_thread(&ThreadUri::parse("/pair/").unwrap(), None, 10)
            .await
            .unwrap();
        assert_eq!(thread_ids(&page), [stored[1].id, stored[3].id]);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_approved_insert_tells_the_other_instances_like_an_approval() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres).await;
    let store = open_store(&database).await;
    let Store::Postgres(postgres) = store.clone() else {
        unreachable!("a PostgreSQL URL opens PostgreSQL")
    };
    let (changes, mut changed) = mpsc::unbounded_channel();
    let listener = tokio::spawn(async move {
        postgres
            .listen_for_changes(|change| {
                let _ = changes.send(change);
            })
            .await;
    });
    assert_eq!(changed.recv().await, Some(StoreChange::Listening));

    store
        .insert_comment(&new_comment("/quiet/", "pending", None), Status::Pending, false)
        .await
        .unwrap()
        .unwrap();
    store
        .insert_comment(&new_comment("/loud/", "approved", None), Status::Approved, false)
        .await
        .unwrap()
        .unwrap();
    let later = store
        .insert_comment(
            &new_comment("/later/", "approved later", None),
            Status::Pending,
            false,
        )
        .await
        .unwrap()
        .unwrap();
    let approval = store
        .set_status(later.id, Status::Approved, "tester")
        .await
        .unwrap();
    assert!(approval.unwrap().changed);
    // Notifications arrive in commit order: a pending insert sends none, an
    // approved insert one, and the approval after it one.
    assert_eq!(changed.recv().await, Some(StoreChange::Thread("/loud/".into())));
    assert_eq!(changed.recv().await, Some(StoreChange::Thread("/later/".into())));
    listener.abort();
    store.close().await;
}
