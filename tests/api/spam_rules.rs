//! The moderation rules over HTTP (issue #11): blocked words in every field,
//! held words and links even for known authors, known authors published,
//! duplicates refused, the honeypot, the form token's timing, the rules API
//! (and its reach across instances), emptying the spam folder, `sort=score`.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

/// PUT /api/admin/rules with `rules`.
async fn put_rules(app: &TestApp, rules: Value) -> reqwest::Response {
    app.admin(Method::PUT, "/api/admin/rules")
        .json(&rules)
        .send()
        .await
        .unwrap()
}

/// Stores rules that must be accepted.
async fn set_rules(app: &TestApp, rules: Value) {
    let response = put_rules(app, rules).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn get_rules(app: &TestApp, address: std::net::SocketAddr) -> Value {
    let response = app
        .client
        .get(format!("http://{address}/api/admin/rules"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Posts `comment` (with `user_agent`, if any); asserts the 202 and that it
/// says `pending`, as every caught comment's answer must; returns the id.
async fn post_caught(app: &TestApp, comment: &Value, user_agent: Option<&str>) -> i64 {
    let mut request = app.client.post(app.url("/api/comments")).json(comment);
    if let Some(agent) = user_agent {
        request = request.header("user-agent", agent);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["status"], "pending",
        "a caught comment answers like any other: {body}"
    );
    assert_eq!(body["message"], "Your comment is awaiting moderation.");
    body["id"].as_i64().unwrap()
}

fn comment_with(overrides: Value) -> Value {
    let mut comment = valid_comment();
    merge(&mut comment, overrides);
    comment
}

async fn form_token(app: &TestApp) -> String {
    let response = app.client.get(app.url("/api/form-token")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_blocked_word_in_each_field_sends_the_comment_to_spam_with_its_reason() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        // (field, word, the submission's overrides, its user agent); each word
        // appears in that field only.
        let cases = [
            ("name", "Spammy", json!({"name": "Mr SPAMMY"}), None),
            (
                "email",
                "bad-domain.example",
                json!({"email": "x@Bad-Domain.example"}),
                None,
            ),
            (
                "website",
                "casino.example",
                json!({"website": "https://casino.example/win"}),
                None,
            ),
            (
                "body",
                "cheap pills",
                json!({"body": "Buy Cheap Pills now"}),
                None,
            ),
            ("ip", "127.0.0.1", json!({}), None),
            (
                "user agent",
                "evilbot",
                json!({}),
                Some("Mozilla/5.0 (EvilBot 2.0)"),
            ),
        ];
        for (n, (field, word, overrides, agent)) in cases.into_iter().enumerate() {
            set_rules(
                &app,
                json!({"moderation": "all", "hold_links": 2, "held_words": [], "blocked_words": [word]}),
            )
            .await;
            let mut comment = comment_with(overrides);
            comment["body"] = json!(format!("{} (case {n})", comment["body"].as_str().unwrap()));
            let id = post_caught(&app, &comment, agent).await;
            let stored = app.admin_comment(id).await;
            assert_eq!(stored["status"], "spam", "{field}: {stored}");
            assert_eq!(
                stored["reasons"],
                json!([format!("blocked_word:{word}")]),
                "{field}"
            );
            assert_eq!(stored["moderated_by"], "auto:blocked-word", "{field}");
            assert!(stored["moderated_at"].is_string(), "{field}");
            assert!(stored["spam_score"].is_null());
        }
        // The same comment without the word is not caught.
        set_rules(
            &app,
            json!({"moderation": "all", "hold_links": 2, "held_words": [], "blocked_words": ["absent-word"]}),
        )
        .await;
        let id = app.submit("/clean/", "nothing to see").await;
        let stored = app.admin_comment(id).await;
        assert_eq!(stored["status"], "pending");
        assert_eq!(stored["reasons"], json!([]));
        assert!(stored["moderated_by"].is_null());
    })
    .await;
}

#[tokio::test]
async fn known_authors_are_published_unless_a_held_word_or_links_hold_them() {
    for_each_backend(|backend| async move {
        // The mode from the configuration, until rules are stored.
        let app = spawn_app_with(backend, |config| {
            config.moderation = marginalia::spam::ModerationMode::Known;
        })
        .await;
        assert_eq!(get_rules(&app, app.address).await["moderation"], "known");
        // Unknown yet: waits.
        let first = app.submit("/known/", "my first comment").await;
        assert_eq!(app.admin_comment(first).await["status"], "pending");
        assert_eq!(app.moderate(first, "approve").await.status(), StatusCode::OK);

        let response = app
            .post_json(&comment_with(json!({"uri": "/known/", "body": "welcome back"})))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["status"], "approved");
        let known = answer["id"].as_i64().unwrap();
        let stored = app.admin_comment(known).await;
        assert_eq!(stored["status"], "approved");
        assert_eq!(stored["reasons"], json!(["known_author"]));
        assert_eq!(stored["moderated_by"], "auto:known-author");
        assert_eq!(app.thread_ids("/known/").await, [first, known]);

        // Name AND email: the same address under another name waits.
        let other_name = app
            .submit_with(json!({"uri": "/known/", "name": "Someone Else", "body": "impostor?"}))
            .await;
        assert_eq!(app.admin_comment(other_name).await["status"], "pending");

        // Held words and links hold even a known author.
        set_rules(
            &app,
            json!({"moderation": "known", "hold_links": 2, "held_words": ["Hold-Me"], "blocked_words": []}),
        )
        .await;
        let held = app.submit("/known/", "please hold-me for a moment").await;
        let stored = app.admin_comment(held).await;
        assert_eq!(stored["status"], "pending");
        assert_eq!(stored["reasons"], json!(["held_word:Hold-Me"]));
        assert!(stored["moderated_by"].is_null());
        let linked = app
            .submit("/known/", "see [one](https://a.example) and https://b.example")
            .await;
        let stored = app.admin_comment(linked).await;
        assert_eq!(stored["status"], "pending");
        assert_eq!(stored["reasons"], json!(["links:2"]));

        // Stored rules win over the configuration: `all` makes everyone wait.
        set_rules(
            &app,
            json!({"moderation": "all", "hold_links": 2, "held_words": [], "blocked_words": []}),
        )
        .await;
        let waits = app.submit("/known/", "and once more").await;
        assert_eq!(app.admin_comment(waits).await["status"], "pending");
    })
    .await;
}

/// Waits (bounded) until the instance's set of known authors finished its
/// first load: from then on it answers "not known" without the database,
/// so what follows tests the set, not the exact query behind it.
async fn wait_for_known_authors(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(app, "marginalia_known_authors_loaded").await != 1.0 {
        assert!(Instant::now() < deadline, "the known authors were never loaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The status and moderator of a submission by `name` / `email`.
async fn submit_as(app: &TestApp, name: &str, email: &str) -> (Value, Value) {
    let id = app
        .submit_with(json!({"uri": "/known-set/", "name": name, "email": email}))
        .await;
    let stored = app.admin_comment(id).await;
    (stored["status"].clone(), stored["moderated_by"].clone())
}

#[tokio::test]
async fn the_in_process_set_of_known_authors_agrees_with_the_database() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        set_rules(
            &app,
            json!({"moderation": "known", "hold_links": 2, "held_words": [], "blocked_words": []}),
        )
        .await;
        wait_for_known_authors(&app).await;

        // Unknown: waits.
        let first = app
            .submit_with(json!({"uri": "/known-set/", "name": "Grace", "email": "Grace@Example.org"}))
            .await;
        assert_eq!(app.admin_comment(first).await["status"], "pending");
        // Approved here: known to the very next comment, the email's case
        // ignored as the query ignores it.
        assert_eq!(app.moderate(first, "approve").await.status(), StatusCode::OK);
        let (status, by) = submit_as(&app, "Grace", "grace@example.ORG").await;
        assert_eq!((status, by), (json!("approved"), json!("auto:known-author")));
        // The same name with another email, or another name: not known.
        assert_eq!(submit_as(&app, "Grace", "grace@example.net").await.0, "pending");
        assert_eq!(submit_as(&app, "grace", "grace@example.org").await.0, "pending");
        assert_eq!(submit_as(&app, "Alan", "alan@example.org").await.0, "pending");

        // A new instance on the same database learns her from its load.
        let app = app.restart().await;
        wait_for_known_authors(&app).await;
        assert!(metric(&app, "marginalia_known_author_keys").await >= 1.0);
        let (status, by) = submit_as(&app, "Grace", "GRACE@example.org").await;
        assert_eq!((status, by), (json!("approved"), json!("auto:known-author")));
        assert_eq!(submit_as(&app, "Grace", "grace@example.net").await.0, "pending");
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_is_refused_and_nothing_is_stored() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        app.submit_with(json!({"uri": "/dup/", "body": "I agree."})).await;
        let before = app.admin_list("status=pending").await["comments"]
            .as_array()
            .unwrap()
            .len();
        // Same email (case aside), uri and body (trimmed): a duplicate.
        let again = comment_with(json!({"uri": "/dup/", "email": "ADA@example.org", "body": "  I agree.\n"}));
        let error = assert_error(app.post_json(&again).await, StatusCode::CONFLICT, "duplicate").await;
        assert_eq!(error["message"], "You have already said that.");
        // Another page or another body is no duplicate.
        app.submit_with(json!({"uri": "/dup/other/", "body": "I agree."}))
            .await;
        app.submit_with(json!({"uri": "/dup/", "body": "I agree!"})).await;
        let after = app.admin_list("status=pending").await["comments"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(after, before + 2, "the duplicate stored nothing");

        // Identical submissions at the same moment (one write batch): one is stored.
        let same = comment_with(json!({"uri": "/dup/race/", "body": "first!"}));
        let answers = futures_util::future::join_all((0..8).map(|_| app.post_json(&same))).await;
        let statuses: Vec<StatusCode> = answers.iter().map(|response| response.status()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::ACCEPTED).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(),
            7,
            "{statuses:?}"
        );
        let race = app.admin_list("status=pending&uri=/dup/race/").await;
        assert_eq!(race["comments"].as_array().unwrap().len(), 1);
    })
    .await;
}

#[tokio::test]
async fn a_filled_honeypot_gets_the_usual_answer_and_is_stored_as_spam() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let trapped =
            comment_with(json!({"uri": "/trap/", "homepage": "https://bot.example", "notify": true}));
        let id = post_caught(&app, &trapped, None).await;
        let stored = app.admin_comment(id).await;
        assert_eq!(stored["status"], "spam");
        assert_eq!(stored["reasons"], json!(["honeypot"]));
        assert_eq!(stored["moderated_by"], "auto:honeypot");

        // The no-JavaScript form too.
        let response = app
            .client
            .post(app.url("/api/comments"))
            .form(&[
                ("uri", "/trap/"),
                ("name", "Bot"),
                ("email", "bot@example.org"),
                ("body", "great post"),
                ("homepage", "filled"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let spam = app.admin_list("status=spam&uri=/trap/").await;
        assert_eq!(ids(&spam["comments"]).len(), 2);
        // An empty honeypot (what the widget sends for people) catches nothing.
        let person = app
            .submit_with(json!({"uri": "/trap/", "body": "a person", "homepage": ""}))
            .await;
        assert_eq!(app.admin_comment(person).await["status"], "pending");
    })
    .await;
}

#[tokio::test]
async fn a_form_sent_too_soon_after_its_token_is_held_and_one_sent_later_is_not() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| {
            config.min_form_seconds = Duration::from_millis(800);
        })
        .await;
        let token = form_token(&app).await;
        let fast = app
            .submit_with(json!({"uri": "/fast/", "body": "instant", "form_token": token}))
            .await;
        assert_eq!(app.admin_comment(fast).await["reasons"], json!(["too_fast"]));

        let token = form_token(&app).await;
        tokio::time::sleep(Duration::from_millis(900)).await;
        let slow = app
            .submit_with(json!({"uri": "/fast/", "body": "thought it over", "form_token": token}))
            .await;
        assert_eq!(app.admin_comment(slow).await["reasons"], json!([]));

        // Forged or garbled: held as too fast. No token: not punished.
        let forged = app
            .submit_with(
                json!({"uri": "/fast/", "body": "forged", "form_token": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
            )
            .await;
        assert_eq!(app.admin_comment(forged).await["reasons"], json!(["too_fast"]));
        let none = app.submit("/fast/", "an API client").await;
        assert_eq!(app.admin_comment(none).await["reasons"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn bad_rules_are_refused_field_by_field_and_change_nothing() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let defaults = get_rules(&app, app.address).await;
        assert_eq!(
            defaults,
            json!({"moderation": "all", "hold_links": 2, "held_words": [], "blocked_words": []})
        );
        let response = put_rules(
            &app,
            json!({"moderation": "some", "hold_links": 101, "held_words": ["  "], "blocked_words": [3]}),
        )
        .await;
        let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        let mut fields: Vec<&str> = error["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort();
        assert_eq!(fields, ["blocked_words", "moderation"], "{error}");
        let response = put_rules(
            &app,
            json!({"moderation": "all", "hold_links": 101, "held_words": ["  "], "blocked_words": []}),
        )
        .await;
        let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert!(error["fields"]["hold_links"].is_string() && error["fields"]["held_words"].is_string());
        let response = put_rules(&app, json!({})).await;
        let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(error["fields"].as_object().unwrap().len(), 4);
        assert_eq!(get_rules(&app, app.address).await, defaults);

        // Words are trimmed; the answer is the rules now in force.
        let response = put_rules(
            &app,
            json!({"moderation": "known", "hold_links": 0, "held_words": [" a b "], "blocked_words": ["x"]}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let stored =
            json!({"moderation": "known", "hold_links": 0, "held_words": ["a b"], "blocked_words": ["x"]});
        assert_eq!(response.json::<Value>().await.unwrap(), stored);
        assert_eq!(get_rules(&app, app.address).await, stored);
        // A moderator is needed.
        let response = app.client.get(app.url("/api/admin/rules")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    })
    .await;
}

#[tokio::test]
async fn emptying_the_spam_folder_deletes_spam_only() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for n in 0..2 {
            let bot = comment_with(json!({"uri": "/empty/", "body": format!("bot {n}"), "homepage": "x"}));
            post_caught(&app, &bot, None).await;
        }
        let person = app.submit("/empty/", "a person").await;
        let marked = app.submit("/empty/", "marked by hand").await;
        assert_eq!(app.moderate(marked, "spam").await.status(), StatusCode::OK);

        for query in [
            "",
            "?status=pending",
            "?status=spam&status=spam",
            "?status=spam&uri=/empty/",
        ] {
            let response = app
                .admin(Method::DELETE, &format!("/api/admin/comments{query}"))
                .send()
                .await
                .unwrap();
            assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        }
        let response = app
            .admin(Method::DELETE, "/api/admin/comments?status=spam")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap(), json!({"deleted": 3}));
        assert!(
            app.admin_list("status=spam").await["comments"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        assert_eq!(ids(&app.admin_list("status=pending").await["comments"]), [person]);
    })
    .await;
}

#[tokio::test]
async fn the_queue_can_be_sorted_by_score_and_paged() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut submitted = Vec::new();
        for n in 0..5 {
            submitted.push(app.submit("/score/", &format!("comment {n}")).await);
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
            let page = app
                .admin_list(&format!("status=pending&sort=score&limit=2{cursor}"))
                .await;
            for comment in page["comments"].as_array().unwrap() {
                assert!(comment["spam_score"].is_null());
                assert!(comment["reasons"].is_array());
            }
            seen.extend(ids(&page["comments"]));
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        // Unscored comments come last, by id: here all of them.
        assert_eq!(seen, submitted);
        let response = app
            .admin(Method::GET, "/api/admin/comments?sort=bogus")
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
    })
    .await;
}

#[tokio::test]
async fn rules_stored_through_one_instance_apply_at_once_on_another() {
    if postgres_server_url().is_none() {
        eprintln!("needs MARGINALIA_TEST_DATABASE_URL (PostgreSQL)");
        return;
    }
    let a = spawn_app(Backend::Postgres).await;
    let mut config = a.config.clone();
    config.bind = "127.0.0.1:0".parse().unwrap();
    let b = marginalia::startup::App::build(&config).await.unwrap();
    let b_address = b.address();
    let b_server = tokio::spawn(b.run(std::future::pending()));
    // B's listener comes up, and B caches the defaults.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get_rules(&a, b_address).await["blocked_words"], json!([]));
    assert_eq!(get_rules(&a, b_address).await["blocked_words"], json!([]));

    set_rules(
        &a,
        json!({"moderation": "all", "hold_links": 2, "held_words": [], "blocked_words": ["crypto-deal"]}),
    )
    .await;
    let started = Instant::now();
    while get_rules(&a, b_address).await["blocked_words"] != json!(["crypto-deal"]) {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "B still has the old rules"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let response = a
        .client
        .post(format!("http://{b_address}/api/comments"))
        .json(&comment_with(
            json!({"uri": "/multi-rules/", "body": "a great crypto-deal"}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let id = response.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let stored = a.admin_comment(id).await;
    assert_eq!(stored["status"], "spam");
    assert_eq!(stored["reasons"], json!(["blocked_word:crypto-deal"]));
    b_server.abort();
}
