//! Moderator tokens: 401s, named tokens, the first-start token and lock-out.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

async fn list_with(app: &TestApp, authorization: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/api/admin/comments"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_unauthorized_with_a_bearer_challenge() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/x/", "wait").await;
        for authorization in [
            None,
            Some("Bearer wrong-token-wrong-token"),
            Some("Basic YWRtaW46YWRtaW4="),
        ] {
            let response = list_with(&app, authorization).await;
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
        // Every admin call is guarded, and nothing happens without a token.
        let response = app
            .client
            .post(app.url(&format!("/api/admin/comments/{id}/approve")))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let response = app
            .client
            .delete(app.url(&format!("/api/admin/comments/{id}")))
            .bearer_auth("wrong-token-wrong-token")
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert_eq!(ids(&app.admin_list("").await["comments"]), [id]);
    })
    .await;
}

#[tokio::test]
async fn a_stored_token_moderates_under_its_name_until_revoked() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let store = marginalia::store::Store::connect(app.database_url())
            .await
            .unwrap();
        let token = marginalia::auth::create_token(&store, "carol").await.unwrap();
        let token = secrecy::ExposeSecret::expose_secret(&token).to_owned();

        let id = app.submit("/x/", "by carol").await;
        let response = app
            .client
            .post(app.url(&format!("/api/admin/comments/{id}/approve")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let comment: Value = response.json().await.unwrap();
        assert_eq!(comment["moderated_by"], "carol");

        // Only the hash is stored.
        let stored = store.list_tokens().await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0].token_hash, token);
        assert_eq!(stored[0].token_hash, marginalia::auth::hash_token(&token));

        assert!(store.revoke_token("carol").await.unwrap());
        let response = list_with(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_first_start_without_any_token_creates_one_that_works() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| config.admin_token = None).await;
        let token = app.first_token.clone().expect("a first token is created");
        assert!(token.len() >= 16);
        let response = list_with(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!(response.status(), StatusCode::OK);

        // The next start finds it and creates no other.
        let app = app.restart().await;
        assert!(app.first_token.is_none());
        let response = list_with(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!(response.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn ten_wrong_tokens_in_a_minute_lock_the_client_out() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for _ in 0..10 {
            let response = list_with(&app, Some("Bearer guess-guess-guess-guess")).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        // Now even the right token is refused from this address.
        let response = app
            .admin(Method::GET, "/api/admin/comments")
            .send()
            .await
            .unwrap();
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_error(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        // The public API is not affected.
        assert_eq!(app.get_thread("uri=/x/").await.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn a_short_admin_token_is_refused_at_start() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut config = test_config(database.url());
    config.admin_token = Some(secrecy::SecretString::from("short"));
    let error = match marginalia::startup::App::build(&config).await {
        Ok(_) => panic!("a 5-character token must be refused"),
        Err(error) => error,
    };
    assert!(error.to_string().contains("at least 16"), "{error}");
}

/// Logs in with `token` and returns the session cookie's value and the CSRF token.
async fn log_in(app: &TestApp, token: &str) -> (String, String) {
    let response = app
        .client
        .post(app.url("/api/admin/session"))
        .json(&serde_json::json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/admin"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert!(
        !body.to_string().contains(token),
        "the answer does not echo the token"
    );
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_moderation_page_session_needs_its_csrf_header_on_every_call() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.submit("/s/", "moderate me by cookie").await;
        let (cookie, csrf) = log_in(&app, ADMIN_TOKEN).await;

        let approve = |csrf: Option<&str>| {
            let mut request = app
                .client
                .post(app.url(&format!("/api/admin/comments/{id}/approve")))
                .header("cookie", &cookie);
            if let Some(csrf) = csrf {
                request = request.header("x-csrf-token", csrf);
            }
            async move { request.send().await.unwrap() }
        };
        assert_error(approve(None).await, StatusCode::FORBIDDEN, "forbidden").await;
        assert_error(
            approve(Some("not-the-token")).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert_eq!(
            app.thread_ids("/s/").await,
            Vec::<i64>::new(),
            "nothing happened without CSRF"
        );
        let response = approve(Some(&csrf)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let comment: Value = response.json().await.unwrap();
        assert_eq!(comment["moderated_by"], "admin");

        // A reload resumes the session and gets the CSRF token back.
        let resumed = app
            .client
            .get(app.url("/api/admin/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resumed.status(), StatusCode::OK);
        let resumed: Value = resumed.json().await.unwrap();
        assert_eq!(resumed["csrf_token"], csrf.as_str());
        assert_eq!(resumed["moderator"], "admin");

        // Logging out ends it.
        let logout = app
            .client
            .delete(app.url("/api/admin/session"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(logout.status(), StatusCode::NO_CONTENT);
        assert_eq!(approve(Some(&csrf)).await.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn a_wrong_token_gets_no_session_and_a_revoked_token_ends_its_sessions() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let response = app
            .client
            .post(app.url("/api/admin/session"))
            .json(&serde_json::json!({"token": "wrong-wrong-wrong-wrong"}))
            .send()
            .await
            .unwrap();
        assert!(response.headers().get("set-cookie").is_none());
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;

        let store = marginalia::store::Store::connect(app.database_url())
            .await
            .unwrap();
        let token = marginalia::auth::create_token(&store, "erin").await.unwrap();
        let (cookie, csrf) = log_in(&app, secrecy::ExposeSecret::expose_secret(&token)).await;
        let list = || {
            let request = app
                .client
                .get(app.url("/api/admin/stats"))
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf);
            async move { request.send().await.unwrap() }
        };
        assert_eq!(list().await.status(), StatusCode::OK);
        store.revoke_token("erin").await.unwrap();
        assert_eq!(list().await.status(), StatusCode::UNAUTHORIZED);
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn one_comment_and_the_status_counts_are_available_to_moderators() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let approved = app.publish("/st/", "a").await;
        let pending = app.submit("/st/", "p").await;
        app.submit("/st/", "p2").await;
        let spam = app.submit("/st/", "s").await;
        app.moderate(spam, "spam").await;

        let stats: Value = app
            .admin(Method::GET, "/api/admin/stats")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            stats,
            serde_json::json!({"pending": 2, "approved": 1, "rejected": 0, "spam": 1})
        );

        let one = app
            .admin(Method::GET, &format!("/api/admin/comments/{pending}"))
            .send()
            .await
            .unwrap();
        assert_eq!(one.status(), StatusCode::OK);
        let one: Value = one.json().await.unwrap();
        assert_eq!(one["id"], pending);
        assert_eq!(one["email"], "ada@example.org");
        let missing = app
            .admin(Method::GET, &format!("/api/admin/comments/{}", approved + 100))
            .send()
            .await
            .unwrap();
        assert_error(missing, StatusCode::NOT_FOUND, "not_found").await;
        // Without a token, neither.
        let response = app.client.get(app.url("/api/admin/stats")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

/// GET /api/admin/stats with a session cookie and its CSRF header.
async fn stats_by_session(app: &TestApp, cookie: &str, csrf: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/admin/stats"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rotating_the_admin_token_ends_the_sessions_it_started() {
    for_each_backend(|backend| async move {
        let mut app = spawn_app(backend).await;
        let (cookie, csrf) = log_in(&app, ADMIN_TOKEN).await;
        assert_eq!(
            stats_by_session(&app, &cookie, &csrf).await.status(),
            StatusCode::OK
        );

        const ROTATED: &str = "rotated-admin-token-9876543210";
        app.config.admin_token = Some(secrecy::SecretString::from(ROTATED));
        let app = app.restart().await;
        let response = stats_by_session(&app, &cookie, &csrf).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let resumed = app
            .client
            .get(app.url("/api/admin/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resumed.status(), StatusCode::UNAUTHORIZED);
        // The new token starts sessions of its own.
        let (cookie, csrf) = log_in(&app, ROTATED).await;
        assert_eq!(
            stats_by_session(&app, &cookie, &csrf).await.status(),
            StatusCode::OK
        );
    })
    .await;
}

#[tokio::test]
async fn a_stored_token_named_admin_does_not_keep_the_admin_token_sessions_alive() {
    for_each_backend(|backend| async move {
        let mut app = spawn_app(backend).await;
        let (cookie, csrf) = log_in(&app, ADMIN_TOKEN).await;
        // Stored behind `create_token`'s back (it refuses the name): a
        // database from before the name was reserved may hold one.
        let store = marginalia::store::Store::connect(app.database_url())
            .await
            .unwrap();
        let hash = marginalia::auth::hash_token("a-stored-token-named-admin-0123");
        store.insert_token("admin", &hash).await.unwrap();
        store.close().await;

        app.config.admin_token = None;
        let app = app.restart().await;
        let response = stats_by_session(&app, &cookie, &csrf).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    })
    .await;
}

#[tokio::test]
async fn a_session_ends_with_its_token_even_when_the_name_is_reused() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let store = marginalia::store::Store::connect(app.database_url())
            .await
            .unwrap();
        let first = marginalia::auth::create_token(&store, "frank").await.unwrap();
        let (cookie, csrf) = log_in(&app, secrecy::ExposeSecret::expose_secret(&first)).await;
        assert_eq!(
            stats_by_session(&app, &cookie, &csrf).await.status(),
            StatusCode::OK
        );

        assert!(store.revoke_token("frank").await.unwrap());
        let second = marginalia::auth::create_token(&store, "frank").await.unwrap();
        let response = stats_by_session(&app, &cookie, &csrf).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        // The new token of that name works, by bearer and by a session of its own.
        let (cookie, csrf) = log_in(&app, secrecy::ExposeSecret::expose_secret(&second)).await;
        assert_eq!(
            stats_by_session(&app, &cookie, &csrf).await.status(),
            StatusCode::OK
        );
        store.close().await;
    })
    .await;
}
