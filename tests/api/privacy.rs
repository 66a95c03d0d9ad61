//! The email is never published: not in any public response, nor any hash of it.

use md5::Md5;
use reqwest::StatusCode;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::helpers::*;

const EMAIL: &str = "Private.Person@Example.org";

/// Every form in which the address could leak: as sent, trimmed, lowercased,
/// and as the MD5/SHA-256 hex digests avatar services use.
fn leak_patterns() -> Vec<String> {
    let mut patterns = Vec::new();
    for email in [EMAIL.to_owned(), EMAIL.to_lowercase()] {
        patterns.push(email.clone());
        for digest in [
            hex::encode(Md5::digest(email.as_bytes())),
            hex::encode(Sha256::digest(email.as_bytes())),
        ] {
            patterns.push(digest.to_uppercase());
            patterns.push(digest);
        }
    }
    patterns.push("Private.Person".into());
    patterns
}

fn assert_no_email(what: &str, text: &str) {
    for pattern in leak_patterns() {
        assert!(!text.contains(&pattern), "{what} leaks {pattern}: {text}");
    }
}

#[tokio::test]
async fn the_email_and_its_hashes_are_in_no_public_response() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let uri = "/privacy/";
        let mut comment = valid_comment();
        merge(&mut comment, json!({"uri": uri, "email": format!("  {EMAIL} ")}));

        let response = app.post_json(&comment).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_no_email("the 202", &response.text().await.unwrap());

        let form = app
            .client
            .post(app.url("/api/comments"))
            .form(&[
                ("uri", uri),
                ("name", "Form"),
                ("email", EMAIL),
                ("body", "via form"),
            ])
            .send()
            .await
            .unwrap();
        assert_no_email("the form page", &form.text().await.unwrap());

        for comment in app.admin_list("").await["comments"].as_array().unwrap() {
            app.moderate(comment["id"].as_i64().unwrap(), "approve").await;
        }
        let reply = app
            .submit_with(json!({"uri": uri, "email": EMAIL, "parent_id": app.thread_ids(uri).await[0]}))
            .await;
        app.moderate(reply, "approve").await;

        let thread = app.get_thread(&format!("uri={uri}")).await;
        let headers = format!("{:?}", thread.headers());
        let body = thread.text().await.unwrap();
        assert!(body.contains("via form"), "the thread is published: {body}");
        assert_no_email("the thread", &body);
        assert_no_email("the thread's headers", &headers);
        let counts = app
            .client
            .get(app.url(&format!("/api/counts?uri={uri}")))
            .send()
            .await
            .unwrap();
        assert_no_email("the counts", &counts.text().await.unwrap());
        let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
        assert_no_email("the metrics", &metrics.text().await.unwrap());

        // Moderators, and only they, see it.
        let queue = app.admin_list(&format!("status=approved&uri={uri}")).await;
        assert!(queue.to_string().contains(&EMAIL.to_owned()));
    })
    .await;
}
