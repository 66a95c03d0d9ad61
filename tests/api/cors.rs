//! CORS: the public API for the blog's origins, never the moderator API.

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

        let response = app
            .admin(Method::GET, "/api/admin/comments")
            .header("origin", BLOG)
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
