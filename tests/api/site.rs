//! The v2 site options (PUBLIC_URL, SITE_URL, SITE_NAME) and what "the service
//! itself" means: the public URL's origin, which decides the session cookie's
//! `Secure`, which pages may call the moderator API, and where a form may
//! redirect to.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[test]
fn a_bad_public_url_stops_start_up_with_a_clear_message_before_anything_is_created() {
    for (bad, says) in [
        ("comments.example.org", "not an absolute http or https URL"),
        ("https://comments.example.org/?x=1", "must not have a query"),
        ("ftp://comments.example.org", "not an absolute http or https URL"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("marginalia.db");
        let output = serve_with(
            &[("MARGINALIA_PUBLIC_URL", bad)],
            &format!("sqlite://{}", path.display()),
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{bad}: started anyway");
        assert!(stderr.contains("MARGINALIA_PUBLIC_URL"), "{bad}: {stderr}");
        assert!(stderr.contains(says), "{bad}: {stderr}");
        // Refused before the database is opened: no file, no first token shown to nobody.
        assert!(!path.exists(), "{bad}: the database was created");
    }
}

#[test]
fn a_bad_site_url_or_name_stops_start_up_too() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("marginalia.db").display());
    let output = serve_with(&[("MARGINALIA_SITE_URL", "/blog")], &url);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("MARGINALIA_SITE_URL"));
    let output = serve_with(&[("MARGINALIA_SITE_NAME", "a\u{1b}[31mb")], &url);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("MARGINALIA_SITE_NAME"));
}

#[tokio::test]
async fn the_app_resolves_the_site_from_its_real_address() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| {
            config.allowed_origins = vec!["https://blog.example".into()];
        })
        .await;
        // Built from the bound address (port 0 asked for), not from the configured one.
        let config_site = app.config.site(app.address).unwrap();
        assert_eq!(config_site.public_origin(), format!("http://{}", app.address));
        assert_eq!(config_site.site_url.as_str(), "https://blog.example/");
        assert_eq!(config_site.name, "blog.example");
        let bad = marginalia::startup::App::build(&marginalia::config::Config {
            public_url: Some("https://comments.example/#x".into()),
            ..app.config.clone()
        })
        .await;
        let error = bad.err().expect("a fragment is refused").to_string();
        assert!(error.contains("MARGINALIA_PUBLIC_URL"), "{error}");
    })
    .await;
}

/// POST /api/admin/session with `token`, an optional Origin and the given content type.
async fn login(app: &TestApp, token: &str, origin: Option<&str>, content_type: &str) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/admin/session"))
        .header("content-type", content_type)
        .body(json!({ "token": token }).to_string());
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.send().await.unwrap()
}

fn set_cookie(response: &reqwest::Response) -> String {
    response.headers()["set-cookie"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_session_cookie_is_secure_exactly_when_the_public_url_is_https() {
    for_each_backend(|backend| async move {
        // Plain HTTP to the service, as behind a TLS-terminating proxy.
        let app = spawn_app_with(backend, |config| {
            config.public_url = Some("https://comments.example".into());
        })
        .await;
        let response = login(&app, ADMIN_TOKEN, None, "application/json").await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = set_cookie(&response);
        assert!(
            cookie.ends_with("; Secure") || cookie.contains("; Secure;"),
            "{cookie}"
        );
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        // The page of that service may log in; the moderator's cookie also ends Secure.
        let response = login(
            &app,
            ADMIN_TOKEN,
            Some("https://comments.example"),
            "application/json",
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);

        let app = spawn_app(backend).await;
        let response = login(&app, ADMIN_TOKEN, None, "application/json").await;
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = set_cookie(&response);
        assert!(!cookie.contains("Secure"), "{cookie}");
    })
    .await;
}

/// Defect 3: a cross-site `text/plain` form post (no CORS preflight) with a
/// wrong token counted toward the lock-out, so any web page could lock the
/// moderators out.
#[tokio::test]
async fn text_plain_posts_are_refused_and_do_not_lock_the_moderator_out() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for _ in 0..11 {
            let response = login(&app, "a-wrong-token-0123456789", None, "text/plain").await;
            assert_error(
                response,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            )
            .await;
        }
        for content_type in [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            let response = login(&app, "a-wrong-token-0123456789", None, content_type).await;
            assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
        // Not locked out: the real moderator still gets in.
        let response = login(&app, ADMIN_TOKEN, None, "application/json; charset=utf-8").await;
        assert_eq!(response.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn cross_site_origins_are_refused_before_any_token_is_checked() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for origin in [
            "https://evil.example",
            "null",
            // The same host over another port or scheme is another origin.
            &format!("http://127.0.0.1:{}", app.address.port() + 1),
            &format!("https://{}", app.address),
        ] {
            for _ in 0..6 {
                let response =
                    login(&app, "a-wrong-token-0123456789", Some(origin), "application/json").await;
                let body = assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .contains("MARGINALIA_PUBLIC_URL"),
                    "{body}"
                );
            }
            // Even the right token: the check comes before credentials.
            let response = login(&app, ADMIN_TOKEN, Some(origin), "application/json").await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{origin}");
        }
        // Every admin call, bearer token or not.
        let id = app.submit("/site/", "Pending.").await;
        for (method, path) in [
            (Method::GET, "/api/admin/comments".to_owned()),
            (Method::POST, format!("/api/admin/comments/{id}/approve")),
            (Method::DELETE, format!("/api/admin/comments/{id}")),
            (Method::GET, "/api/admin/session".to_owned()),
        ] {
            let response = app
                .admin(method.clone(), &path)
                .header("origin", "https://evil.example")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
            assert!(response.headers().get("access-control-allow-origin").is_none());
        }
        assert_eq!(app.admin_list("").await["comments"][0]["id"], id, "still pending");
        // None of the 30 refusals counted: no lock-out.
        let response = login(&app, ADMIN_TOKEN, None, "application/json").await;
        assert_eq!(response.status(), StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn the_moderation_page_of_the_service_itself_works() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let own = format!("http://{}", app.address);
        let response = login(&app, ADMIN_TOKEN, Some(&own), "application/json").await;
        assert_eq!(response.status(), StatusCode::OK);
        let response = app
            .admin(Method::GET, "/api/admin/comments")
            .header("origin", &own)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // Wrong tokens from the page itself still count, as they always did.
        for _ in 0..10 {
            let response = login(&app, "a-wrong-token-0123456789", Some(&own), "application/json").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let response = login(&app, ADMIN_TOKEN, Some(&own), "application/json").await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    })
    .await;
}

#[tokio::test]
async fn a_login_naming_its_token_twice_is_refused_with_the_key_named() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let body = format!(r#"{{"token": "wrong-token-0123456789", "token": "{ADMIN_TOKEN}"}}"#);
        let response = app
            .client
            .post(app.url("/api/admin/session"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let body = assert_error(response, StatusCode::BAD_REQUEST, "bad_request").await;
        assert!(body["message"].as_str().unwrap().contains("`token`"), "{body}");
    })
    .await;
}

/// Defect 5: with ALLOWED_ORIGINS empty, `Host: evil.example` plus a matching
/// `Referer` made the form's 303 go there.
#[tokio::test]
async fn the_form_redirect_never_trusts_the_host_header() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let form = [
            ("uri", "/site/form/"),
            ("name", "Ada"),
            ("email", "ada@example.org"),
            ("body", "By form."),
        ];
        let post = |referer: String, host: Option<&'static str>| {
            // A body per post: the same one twice would be a duplicate (409).
            let body = format!("{} From {referer} via {host:?}.", form[3].1);
            let mut request = app
                .client
                .post(app.url("/api/comments"))
                .header("accept", "text/html")
                .header("referer", referer)
                .form(&[form[0], form[1], form[2], ("body", body.as_str())]);
            if let Some(host) = host {
                request = request.header("host", host);
            }
            request.send()
        };
        for referer in ["http://evil.example/phish", "https://evil.example/phish"] {
            let response = post(referer.into(), Some("evil.example")).await.unwrap();
            assert_eq!(response.status(), StatusCode::ACCEPTED, "{referer}");
            assert!(response.headers().get("location").is_none());
        }
        // A page of the service itself (the demo) is gone back to.
        let demo = format!("http://{}/demo", app.address);
        let response = post(demo.clone(), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], demo.as_str());
        // Over another scheme it is another origin.
        let response = post(format!("https://{}/demo", app.address), None).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    })
    .await;
}
