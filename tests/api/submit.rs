//! POST /api/comments: what is accepted, what is refused and how.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_valid_comment_is_accepted_as_pending() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let response = app.post_json(&valid_comment()).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "pending");
        assert_eq!(body["message"], "Your comment is awaiting moderation.");
        assert_eq!(body["name"], "Ada Lovelace");
        assert_eq!(body["website"], "https://ada.example/");
        assert_eq!(body["parent_id"], Value::Null);
        assert_eq!(body["body_html"], "<p>A <em>thoughtful</em> comment.</p>\n");
        assert!(body["id"].as_i64().unwrap() > 0);
        let created = body["created_at"].as_str().unwrap();
        assert!(
            time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339).is_ok(),
            "created_at is RFC 3339: {created}"
        );
        assert!(body.get("email").is_none() && body.get("ip").is_none() && body.get("user_agent").is_none());

        // It waits in the queue with everything the moderator needs.
        let queue = app.admin_list("status=pending").await;
        let queued = &queue["comments"][0];
        assert_eq!(queued["id"], body["id"]);
        assert_eq!(queued["email"], "ada@example.org");
        assert_eq!(queued["body"], "A *thoughtful* comment.");
        assert_eq!(queued["ip"], "127.0.0.1");
        assert_eq!(queued["status"], "pending");
    })
    .await;
}

#[tokio::test]
async fn every_missing_field_is_named_at_once() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let body = assert_error(
            app.post_json(&json!({})).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        let fields = body["fields"].as_object().unwrap();
        let mut named: Vec<&str> = fields.keys().map(String::as_str).collect();
        named.sort();
        assert_eq!(named, ["body", "email", "name", "uri"]);
    })
    .await;
}

#[tokio::test]
async fn fields_of_the_wrong_json_type_are_named() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut comment = valid_comment();
        merge(&mut comment, json!({"name": 42, "body": ["x"], "parent_id": "1"}));
        let body = assert_error(
            app.post_json(&comment).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        let fields = body["fields"].as_object().unwrap();
        assert_eq!(fields.len(), 3, "{body}");
        assert!(
            fields.contains_key("name") && fields.contains_key("body") && fields.contains_key("parent_id")
        );
    })
    .await;
}

/// Each rule of the contract (openapi.yaml), with the field it must name.
fn invalid_cases() -> Vec<(&'static str, Value)> {
    vec![
        ("uri", json!({"uri": "posts/1"})),
        ("uri", json!({"uri": "/a b"})),
        ("uri", json!({"uri": "/a\u{7}b"})),
        ("uri", json!({"uri": format!("/{}", "a".repeat(500))})),
        ("name", json!({"name": "   "})),
        ("name", json!({"name": "n".repeat(81)})),
        ("name", json!({"name": "Ada\u{0}"})),
        ("email", json!({"email": "not-an-address"})),
        (
            "email",
            json!({"email": format!("{}@{}.org", "a".repeat(64), "b".repeat(200))}),
        ),
        ("email", json!({"email": ""})),
        ("website", json!({"website": "javascript:alert(1)"})),
        ("website", json!({"website": "/relative"})),
        ("website", json!({"website": "ftp://ada.example/"})),
        (
            "website",
            json!({"website": format!("https://ada.example/{}", "a".repeat(490))}),
        ),
        ("body", json!({"body": " \n "})),
        ("body", json!({"body": "b".repeat(10_001)})),
        ("body", json!({"body": "nul \u{0} inside"})),
        ("body", json!({"body": format!("{} deep", ">".repeat(5_000))})),
        ("parent_id", json!({"parent_id": 999_999})),
        // Found when the service was tried as an attacker would:
        ("name", json!({"name": "\u{200B}"})),
        ("name", json!({"name": "\u{FEFF}\u{200C}\u{200D}\u{2060}"})),
        ("name", json!({"name": " \u{200E}\u{200F} "})),
        ("name", json!({"name": "Ada\u{202E}ecalevol"})),
        ("name", json!({"name": "\u{2067}Ada\u{2069}"})),
        ("uri", json!({"uri": "/posts/\u{202E}1/"})),
        ("uri", json!({"uri": "/posts/\u{2066}1/"})),
        (
            "website",
            json!({"website": "https://ada.example/\u{202E}gpj.exe"}),
        ),
        ("website", json!({"website": "https://ada.example/?\u{2068}"})),
        ("body", json!({"body": "<img src=x>"})),
        ("body", json!({"body": "<script>alert(1)</script>"})),
        ("body", json!({"body": "[](https://example.org/)"})),
        ("body", json!({"body": "\u{200B}"})),
    ]
}

#[tokio::test]
async fn each_validation_rule_names_its_field() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for (field, overrides) in invalid_cases() {
            let mut comment = valid_comment();
            merge(&mut comment, overrides.clone());
            let body = assert_error(
                app.post_json(&comment).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
            )
            .await;
            let fields = body["fields"].as_object().unwrap();
            assert_eq!(
                fields.keys().collect::<Vec<_>>(),
                [field],
                "{overrides} gave {body}"
            );
        }
        // Nothing of it was stored.
        assert_eq!(app.admin_list("status=pending").await["comments"], json!([]));
    })
    .await;
}

#[tokio::test]
async fn values_at_the_limits_are_accepted_and_counted_in_characters() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        app.submit_with(json!({
            "uri": format!("/{}", "é".repeat(499)),
            "name": "ß".repeat(80),
            "body": "ü".repeat(10_000),
            "website": "",
        }))
        .await;
        let queued = &app.admin_list("status=pending").await["comments"][0];
        assert_eq!(queued["website"], Value::Null, "\"\" means no website");
        assert_eq!(queued["name"].as_str().unwrap().chars().count(), 80);
    })
    .await;
}

#[tokio::test]
async fn names_and_bodies_are_trimmed() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app
            .submit_with(json!({"name": "  Ada  ", "body": "\n hello \n"}))
            .await;
        let queued = &app.admin_list("").await["comments"][0];
        assert_eq!(queued["id"], id);
        assert_eq!(queued["name"], "Ada");
        assert_eq!(queued["body"], "hello");
    })
    .await;
}

#[tokio::test]
async fn replies_must_name_an_approved_comment_of_the_same_page() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let approved = app.publish("/a/", "parent").await;
        let pending = app.submit("/a/", "still pending").await;

        let reply = app
            .submit_with(json!({"uri": "/a/", "parent_id": approved}))
            .await;
        let thread_after_approval = {
            app.moderate(reply, "approve").await;
            app.thread("/a/").await
        };
        assert_eq!(thread_after_approval["comments"][1]["parent_id"], approved);

        for parent in [pending, 999_999] {
            let mut comment = valid_comment();
            merge(&mut comment, json!({"uri": "/a/", "parent_id": parent}));
            let body = assert_error(
                app.post_json(&comment).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
            )
            .await;
            assert!(body["fields"]["parent_id"].is_string(), "{body}");
        }
        // An approved comment of another page is not a parent here.
        let mut comment = valid_comment();
        merge(&mut comment, json!({"uri": "/b/", "parent_id": approved}));
        let body = assert_error(
            app.post_json(&comment).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert!(body["fields"]["parent_id"].is_string());
    })
    .await;
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        for body in ["{\"uri\": ", "not json", "[1, 2]", "\"text\"", deep.as_str()] {
            let response = app
                .client
                .post(app.url("/api/comments"))
                .header("content-type", "application/json")
                .body(body.to_owned())
                .send()
                .await
                .unwrap();
            assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        }
    })
    .await;
}

#[tokio::test]
async fn other_content_types_are_unsupported() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for content_type in [Some("text/plain"), Some("multipart/form-data; boundary=x"), None] {
            let mut request = app
                .client
                .post(app.url("/api/comments"))
                .body(valid_comment().to_string());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let response = request.send().await.unwrap();
            assert_error(
                response,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            )
            .await;
        }
    })
    .await;
}

#[tokio::test]
async fn bodies_over_128_kib_are_too_large_whether_declared_or_streamed() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut comment = valid_comment();
        merge(&mut comment, json!({"body": "x".repeat(129 * 1024)}));
        let response = app.post_json(&comment).await;
        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

        // Chunked, with no Content-Length to refuse early.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..40).map(|_| Ok(vec![b' '; 4096])).collect();
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    })
    .await;
}

#[tokio::test]
async fn a_plain_form_post_is_accepted_with_a_small_page() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let response = app
            .client
            .post(app.url("/api/comments"))
            .form(&[
                ("uri", "/form/"),
                ("name", "Form Reader"),
                ("email", "form@example.org"),
                ("website", ""),
                ("body", "Sent without JavaScript"),
                ("parent_id", ""),
            ])
            .header("referer", "https://evil.example/phish")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::ACCEPTED,
            "no redirect to an unlisted origin"
        );
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = response.text().await.unwrap();
        assert!(page.contains("awaiting moderation"));
        assert!(!page.contains("evil.example"));
        let queued = &app.admin_list("uri=/form/").await["comments"][0];
        assert_eq!(queued["name"], "Form Reader");
    })
    .await;
}

#[tokio::test]
async fn a_form_post_from_an_allowed_origin_goes_back_to_its_page() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| {
            config.allowed_origins = vec!["https://blog.example".into()];
        })
        .await;
        let form = [
            ("uri", "/form/"),
            ("name", "Form Reader"),
            ("email", "form@example.org"),
            ("body", "Sent without JavaScript"),
        ];
        let response = app
            .client
            .post(app.url("/api/comments"))
            .form(&form)
            .header("referer", "https://blog.example/form/")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], "https://blog.example/form/");

        // A look-alike origin is not the allowed one.
        let mut form = form;
        form[3] = ("body", "Sent without JavaScript, again");
        let response = app
            .client
            .post(app.url("/api/comments"))
            .form(&form)
            .header("referer", "https://blog.example.evil.example/form/")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert!(response.headers().get("location").is_none());

        // Form errors are named like JSON ones.
        let response = app
            .client
            .post(app.url("/api/comments"))
            .form(&[("uri", "/form/"), ("parent_id", "abc")])
            .send()
            .await
            .unwrap();
        let body = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "validation").await;
        assert_eq!(body["fields"].as_object().unwrap().len(), 4, "{body}");
    })
    .await;
}

#[tokio::test]
async fn refused_requests_leave_stored_comments_untouched() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let published = app.publish("/keep/", "kept as is").await;
        let before = app.thread("/keep/").await;
        let queue_before = app.admin_list("status=approved").await;

        let mut bad = valid_comment();
        merge(
            &mut bad,
            json!({"uri": "/keep/", "parent_id": published, "email": "nope"}),
        );
        app.post_json(&bad).await;
        app.client
            .post(app.url("/api/comments"))
            .header("content-type", "application/json")
            .body("{\"uri\": \"/keep/\"")
            .send()
            .await
            .unwrap();
        app.moderate(published + 1000, "reject").await;
        app.delete(published + 1000).await;

        assert_eq!(app.thread("/keep/").await, before);
        assert_eq!(app.admin_list("status=approved").await, queue_before);
    })
    .await;
}

#[tokio::test]
async fn a_browser_posting_the_plain_form_gets_its_errors_as_a_page() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("accept", "text/html,application/xhtml+xml")
            .form(&[
                ("uri", "/form/"),
                ("name", "<script>x</script>"),
                ("email", "nope"),
                ("body", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = response.text().await.unwrap();
        // Each failing field by the name the form shows (the page's language
        // is English here: no Accept-Language, MARGINALIA_LANG's default).
        for label in ["Email", "Comment"] {
            assert!(page.contains(&format!("<strong>{label}</strong>")), "{page}");
        }
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            app.admin_list("").await["comments"]
                .as_array()
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_submissions_each_get_their_own_answer() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let parent = app.publish("/busy/", "parent").await;
        let pending = app.submit("/busy/", "pending parent").await;
        // Sent together, so the writer commits them in shared batches.
        let sends = (0..40).map(|n| {
            let mut comment = valid_comment();
            let parent_id = match n % 4 {
                0 => json!(parent),
                1 => json!(pending),
                _ => Value::Null,
            };
            merge(
                &mut comment,
                json!({"uri": "/busy/", "body": format!("comment number {n}"), "parent_id": parent_id}),
            );
            let request = app.client.post(app.url("/api/comments")).json(&comment);
            async move { (n, request.send().await.unwrap()) }
        });
        let answers = futures_util::future::join_all(sends).await;
        let mut ids = std::collections::HashSet::new();
        for (n, response) in answers {
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            if n % 4 == 1 {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{n}: {body}");
                assert!(body["fields"]["parent_id"].is_string());
            } else {
                assert_eq!(status, StatusCode::ACCEPTED, "{n}: {body}");
                assert_eq!(body["body_html"], format!("<p>comment number {n}</p>\n"), "{n}");
                assert_eq!(
                    body["parent_id"],
                    if n % 4 == 0 { json!(parent) } else { Value::Null }
                );
                assert!(ids.insert(body["id"].as_i64().unwrap()), "ids are distinct");
            }
        }
        assert_eq!(ids.len(), 30);
        let queue = app.admin_list("uri=/busy/&limit=100").await;
        assert_eq!(
            queue["comments"].as_array().unwrap().len(),
            31,
            "30 accepted and the pending parent"
        );
    })
    .await;
}

#[tokio::test]
async fn bodies_that_nest_too_deeply_or_render_too_large_are_refused_on_body() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut deep = valid_comment();
        merge(&mut deep, json!({ "body": format!("{}x", ">".repeat(9_999)) }));
        let refused = assert_error(
            app.post_json(&deep).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert!(
            refused["fields"]["body"].as_str().unwrap().contains("nested"),
            "{refused}"
        );
        // Shallow but huge once rendered: a thousand uses of one long reference link.
        let mut large = valid_comment();
        let reference = format!("[r]: https://example.org/{}\n\n", "x".repeat(200));
        merge(
            &mut large,
            json!({ "body": reference + &"[a][r] ".repeat(1_000) }),
        );
        let refused = assert_error(
            app.post_json(&large).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert!(refused["fields"].get("body").is_some(), "{refused}");
        // Nothing was stored.
        assert_eq!(
            app.admin_list("status=pending").await["comments"]
                .as_array()
                .unwrap()
                .len(),
            0
        );
    })
    .await;
}

/// Found when the service was tried as an attacker would: `<img src=x>` was
/// accepted with an empty `body_html`, for a moderator to approve a blank.
#[tokio::test]
async fn a_body_that_renders_to_nothing_is_refused_with_a_message_saying_so() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let mut comment = valid_comment();
        merge(&mut comment, json!({"body": "<img src=x onerror=alert(1)>"}));
        let body = assert_error(
            app.post_json(&comment).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert_eq!(body["fields"]["body"], "says nothing once formatting is removed");
        // With something to say next to it, the image is merely dropped.
        merge(&mut comment, json!({"body": "Look: <img src=x>"}));
        let response = app.post_json(&comment).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let accepted: Value = response.json().await.unwrap();
        assert_eq!(accepted["body_html"], "<p>Look: </p>\n");
    })
    .await;
}

/// Found when the service was tried as an attacker would: a key sent twice
/// was accepted, the last copy winning (the first, for forms).
#[tokio::test]
async fn a_field_sent_twice_is_refused_in_json_and_in_forms() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let json_body =
            r#"{"uri": "/twice/", "name": "Ada", "email": "ada@example.org", "body": "Hi", "name": "Eve"}"#;
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("content-type", "application/json")
            .body(json_body)
            .send()
            .await
            .unwrap();
        let body = assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(body["message"].as_str().unwrap().contains("`name`"), "{body}");

        let form_body = "uri=%2Ftwice%2F&name=Ada&email=ada%40example.org&body=Hi&body=Other";
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body)
            .send()
            .await
            .unwrap();
        let body = assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(body["message"].as_str().unwrap().contains("`body`"), "{body}");

        // Nothing was stored.
        assert_eq!(app.admin_list("status=pending").await["comments"], json!([]));

        // A field the service does not read is ignored, however often it comes
        // (found by schemathesis: a form may carry anything else).
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("uri=%2Ftwice%2F&name=Ada&email=ada%40example.org&body=Hi&utm=a&utm=b")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    })
    .await;
}

/// `notify` asks for mail about replies (double opt-in follows): a JSON
/// boolean, or a form checkbox that sends `on` when ticked and nothing when
/// not. Anything else is named in a 422, and nothing is stored.
#[tokio::test]
async fn notify_is_a_boolean_in_json_and_a_checkbox_in_forms() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for notify in [json!(true), json!(false), Value::Null] {
            let mut comment = valid_comment();
            comment["body"] = json!(format!("notify: {notify}"));
            comment["notify"] = notify.clone();
            let response = app.post_json(&comment).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED, "notify: {notify}");
        }
        for notify in [json!("yes"), json!(1), json!("true"), json!({})] {
            let mut comment = valid_comment();
            comment["uri"] = json!("/notify/refused/");
            comment["notify"] = notify.clone();
            let body = assert_error(
                app.post_json(&comment).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
            )
            .await;
            let fields = body["fields"].as_object().unwrap();
            assert_eq!(fields.keys().collect::<Vec<_>>(), ["notify"], "{notify}: {body}");
        }

        let form = |notify: &'static str| {
            app.client.post(app.url("/api/comments")).form(&[
                ("uri", "/notify/form/"),
                ("name", "Form Reader"),
                ("email", "form@example.org"),
                (
                    "body",
                    if notify == "on" {
                        "Tell me about replies."
                    } else {
                        "Tell me nothing."
                    },
                ),
                ("notify", notify),
            ])
        };
        for ticked in ["on", ""] {
            let response = form(ticked).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::ACCEPTED, "notify={ticked}");
        }
        let body = assert_error(
            form("maybe").send().await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        )
        .await;
        assert!(body["fields"]["notify"].is_string(), "{body}");

        assert_eq!(
            app.admin_list("uri=/notify/form/").await["comments"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            app.admin_list("uri=/notify/refused/").await["comments"],
            json!([])
        );
    })
    .await;
}
