//! CORS: the public API for the blog's origins, never the moderator API; every
//! public answer says `Vary: Origin`, and "the service itself" is the public
//! URL's origin, never whatever the `Host` header claims.

use reqwest::{Method, StatusCode};

use crate::helpers::*;

const BLOG: &str = "https://blog.example";

async fn restricted_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |config| config.allowed_origins = vec![BLOG.into()]).await
}

async fn preflight(
    app: &TestApp,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url(path))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_blogs_origin_may_call_the_public_api() {
    for_each_backend(|backend| async move {
        let app = restricted_app(backend).await;
        let response = preflight(&app, "/api/comments", BLOG, "POST", "content-type").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], BLOG);

        let response = app
            .client
            .get(app.url("/api/comments?uri=/c/"))
            .header("origin", BLOG)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["access-control-allow-origin"], BLOG);

        // Error replies carry CORS headers too, so the widget can read them.
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("origin", BLOG)
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()["access-control-allow-origin"], BLOG);
    })
    .await;
}

#[tokio::test]
async fn other_origins_are_refused() {
    for_each_backend(|backend| async move {
        let app = restricted_app(backend).await;
        let response = preflight(
            &app,
            "/api/comments",
            "https://evil.example",
            "POST",
            "content-type",
        )
        .await;
        assert!(response.headers().get("access-control-allow-origin").is_none());
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;

        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("origin", "https://evil.example")
            .json(&valid_comment())
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
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
async fn the_moderator_api_never_answers_cors() {
    for_each_backend(|backend| async move {
        // Even with "any origin" allowed on the public API.
        let app = spawn_app(backend).await;
        let response = preflight(&app, "/api/admin/comments", BLOG, "GET", "authorization").await;
        assert!(response.headers().get("access-control-allow-origin").is_none());
        assert_ne!(response.status(), StatusCode::OK);

        // A page of another site is refused outright (see site.rs), and never with CORS headers.
        let response = app
            .admin(Method::GET, "/api/admin/comments")
            .header("origin", BLOG)
            .send()
            .await
            .unwrap();
        assert!(response.headers().get("access-control-allow-origin").is_none());
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
        let response = app
            .admin(Method::GET, "/api/admin/comments")
            .header("origin", format!("http://{}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get("access-control-allow-origin").is_none());

        // The public API does answer any origin in that configuration.
        let response = preflight(
            &app,
            "/api/comments",
            "https://anyone.example",
            "POST",
            "content-type",
        )
        .await;
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "https://anyone.example"
        );
    })
    .await;
}

#[tokio::test]
async fn a_page_of_the_service_itself_may_post_even_with_an_allow_list() {
    for_each_backend(|backend| async move {
        let app = restricted_app(backend).await;
        // Browsers send Origin on every POST, same-origin ones included (/demo).
        let own_origin = format!("http://{}", app.address);
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("origin", &own_origin)
            .json(&valid_comment())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);

        // A look-alike on another port is another origin.
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("origin", format!("http://127.0.0.1:{}", app.address.port() + 1))
            .json(&valid_comment())
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    })
    .await;
}

/// Defect 5: the same-origin bypass compared `Origin` with the `Host` header,
/// which the client chooses.
#[tokio::test]
async fn a_host_header_matching_the_origin_is_no_way_around_the_allow_list() {
    for_each_backend(|backend| async move {
        let app = restricted_app(backend).await;
        for (origin, host) in [
            ("https://evil.example", "evil.example"),
            ("http://evil.example", "evil.example"),
        ] {
            let response = app
                .client
                .post(app.url("/api/comments"))
                .header("origin", origin)
                .header("host", host)
                .json(&valid_comment())
                .send()
                .await
                .unwrap();
            assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
        }
        // The service's own origin under another Host header is still the service.
        let response = app
            .client
            .post(app.url("/api/comments"))
            .header("origin", format!("http://{}", app.address))
            .header("host", "evil.example")
            .json(&valid_comment())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let pending = app.admin_list("").await;
        assert_eq!(
            pending["comments"].as_array().unwrap().len(),
            1,
            "only the service's own"
        );
    })
    .await;
}

/// The configured public URL decides, not the address the request reached.
#[tokio::test]
async fn the_service_itself_is_its_public_urls_origin() {
    for_each_backend(|backend| async move {
        let app = spawn_app_with(backend, |config| {
            config.allowed_origins = vec![BLOG.into()];
            config.public_url = Some("https://comments.example".into());
        })
        .await;
        let post = |origin: String| {
            app.client
                .post(app.url("/api/comments"))
                .header("origin", origin)
                .json(&valid_comment())
                .send()
        };
        let response = post("https://comments.example".into()).await.unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let response = post(format!("http://{}", app.address)).await.unwrap();
        assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
    })
    .await;
}

/// True when the response's `Vary` names `Origin`.
fn varies_on_origin(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all("vary")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|name| name.trim().eq_ignore_ascii_case("origin"))
}

/// Defect 4: public answers echoed the caller's origin, with an ETag, and no
/// `Vary: Origin`, so a shared cache could serve one blog's CORS header to another.
#[tokio::test]
async fn every_public_answer_varies_on_origin() {
    for_each_backend(|backend| async move {
        for app in [spawn_app(backend).await, restricted_app(backend).await] {
            let own = format!("http://{}", app.address);
            app.publish("/vary/", "Published.").await;
            for origin in [Some(BLOG), Some(own.as_str()), None] {
                let with_origin = |request: reqwest::RequestBuilder| match origin {
                    Some(origin) => request.header("origin", origin),
                    None => request,
                };
                let thread = with_origin(app.client.get(app.url("/api/comments?uri=/vary/")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(thread.status(), StatusCode::OK);
                assert!(varies_on_origin(&thread), "thread, origin {origin:?}");
                let etag = thread.headers()["etag"].clone();
                let not_modified = with_origin(app.client.get(app.url("/api/comments?uri=/vary/")))
                    .header("if-none-match", etag)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
                assert!(varies_on_origin(&not_modified), "304, origin {origin:?}");
                let counts = with_origin(app.client.get(app.url("/api/counts?uri=/vary/")))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(counts.status(), StatusCode::OK);
                assert!(varies_on_origin(&counts), "counts, origin {origin:?}");
                let mut comment = valid_comment();
                comment["body"] = serde_json::json!(format!("From origin {origin:?}."));
                let submitted = with_origin(app.client.post(app.url("/api/comments")))
                    .json(&comment)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(submitted.status(), StatusCode::ACCEPTED);
                assert!(varies_on_origin(&submitted), "202, origin {origin:?}");
                let refused = with_origin(app.client.post(app.url("/api/comments")))
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
                assert!(varies_on_origin(&refused), "422, origin {origin:?}");
            }
            for path in ["/api/comments", "/api/counts"] {
                let response = preflight(&app, path, BLOG, "GET", "content-type").await;
                assert_eq!(response.status(), StatusCode::OK);
                assert!(varies_on_origin(&response), "preflight of {path}");
            }
        }
    })
    .await;
}
