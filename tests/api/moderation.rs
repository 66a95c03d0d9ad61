//! The moderator API: listing, approve, reject, spam, delete.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn approving_publishes_and_records_who_and_when() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/m/", "approve me").await;
        let response = app.moderate(id, "approve").await;
        assert_eq!(response.status(), StatusCode::OK);
        let comment: Value = response.json().await.unwrap();
        assert_eq!(comment["id"], id);
        assert_eq!(comment["status"], "approved");
        assert_eq!(comment["moderated_by"], "admin");
        assert!(comment["moderated_at"].is_string());
        assert_eq!(comment["email"], "ada@example.org", "moderators see the email");
        assert_eq!(app.thread_ids("/m/").await, [id]);
    })
    .await;
}

#[tokio::test]
async fn rejecting_an_approved_comment_unpublishes_it() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.publish("/m/", "second thoughts").await;
        let comment: Value = app.moderate(id, "reject").await.json().await.unwrap();
        assert_eq!(comment["status"], "rejected");
        assert!(app.thread_ids("/m/").await.is_empty());
        let comment: Value = app.moderate(id, "spam").await.json().await.unwrap();
        assert_eq!(comment["status"], "spam");
        assert_eq!(ids(&app.admin_list("status=spam").await["comments"]), [id]);
    })
    .await;
}

#[tokio::test]
async fn repeating_an_action_is_harmless() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/m/", "twice").await;
        for action in ["approve", "reject", "spam"] {
            let first: Value = app.moderate(id, action).await.json().await.unwrap();
            let second = app.moderate(id, action).await;
            assert_eq!(second.status(), StatusCode::OK);
            let second: Value = second.json().await.unwrap();
            assert_eq!(second, first, "a repeat changes nothing, not even moderated_at");
        }
    })
    .await;
}

#[tokio::test]
async fn actions_on_unknown_ids_are_not_found() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for action in ["approve", "reject", "spam"] {
            assert_error(
                app.moderate(424_242, action).await,
                StatusCode::NOT_FOUND,
                "not_found",
            )
            .await;
        }
        assert_error(app.delete(424_242).await, StatusCode::NOT_FOUND, "not_found").await;
        let response = app
            .admin(Method::POST, "/api/admin/comments/not-a-number/approve")
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    })
    .await;
}

#[tokio::test]
async fn delete_removes_for_good_and_a_second_delete_is_not_found() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.publish("/d/", "delete me").await;
        let response = app.delete(id).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.bytes().await.unwrap().is_empty());
        assert!(app.thread_ids("/d/").await.is_empty());
        for status in ["pending", "approved", "rejected", "spam"] {
            assert!(!ids(&app.admin_list(&format!("status={status}")).await["comments"]).contains(&id));
        }
        assert_error(app.delete(id).await, StatusCode::NOT_FOUND, "not_found").await;
        assert_error(
            app.moderate(id, "approve").await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn replies_survive_their_parents_deletion_as_top_level_comments() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let parent = app.publish("/d/", "parent").await;
        let reply = app.submit_with(json!({"uri": "/d/", "parent_id": parent})).await;
        app.moderate(reply, "approve").await;
        let pending_reply = app.submit_with(json!({"uri": "/d/", "parent_id": parent})).await;

        assert_eq!(app.delete(parent).await.status(), StatusCode::NO_CONTENT);
        let thread = app.thread("/d/").await;
        assert_eq!(ids(&thread["comments"]), [reply]);
        assert_eq!(thread["comments"][0]["parent_id"], Value::Null);
        let queue = app.admin_list("status=pending").await;
        assert_eq!(ids(&queue["comments"]), [pending_reply]);
        assert_eq!(queue["comments"][0]["parent_id"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn the_queue_is_oldest_first_filterable_by_page_and_paged() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut on_a = Vec::new();
        for n in 0..5 {
            on_a.push(app.submit("/a/", &format!("a{n}")).await);
            app.submit("/b/", &format!("b{n}")).await;
        }
        let queue = app.admin_list("status=pending").await;
        let all = ids(&queue["comments"]);
        assert_eq!(all.len(), 10);
        assert!(all.windows(2).all(|w| w[0] < w[1]), "oldest first: {all:?}");
        assert_eq!(app.admin_list("").await, queue, "pending is the default");

        assert_eq!(ids(&app.admin_list("uri=/a/").await["comments"]), on_a);

        let mut seen = Vec::new();
        let mut query = "status=pending&uri=/a/&limit=2".to_owned();
        loop {
            let page = app.admin_list(&query).await;
            seen.extend(ids(&page["comments"]));
            match page["next"].as_str() {
                Some(next) => query = format!("status=pending&uri=/a/&limit=2&after={next}"),
                None => break,
            }
        }
        assert_eq!(seen, on_a);
    })
    .await;
}

#[tokio::test]
async fn the_archives_are_newest_first_and_paged() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut approved = Vec::new();
        for n in 0..3 {
            approved.push(app.publish("/arch/", &format!("{n}")).await);
        }
        approved.reverse();
        assert_eq!(
            ids(&app.admin_list("status=approved").await["comments"]),
            approved
        );
        let first = app.admin_list("status=approved&limit=2").await;
        assert_eq!(ids(&first["comments"]), approved[..2]);
        let next = first["next"].as_str().unwrap();
        let second = app
            .admin_list(&format!("status=approved&limit=2&after={next}"))
            .await;
        assert_eq!(ids(&second["comments"]), approved[2..]);
        assert_eq!(second["next"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn a_bad_moderation_query_is_a_bad_request() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for query in ["status=deleted", "limit=0", "after=x", "uri=no-slash"] {
            let response = app
                .admin(Method::GET, &format!("/api/admin/comments?{query}"))
                .send()
                .await
                .unwrap();
            assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        }
    })
    .await;
}
