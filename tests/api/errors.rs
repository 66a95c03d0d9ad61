//! Every failure is the JSON error shape, including warp's own rejections.

use reqwest::{Method, StatusCode};

use crate::helpers::*;

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for path in [
            "/",
            "/nope",
            "/api",
            "/api/comments/extra",
            "/api/admin/comments/1/publish",
        ] {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_wrong_method_is_a_405_naming_the_allowed_ones() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let cases = [
            (Method::PUT, "/api/comments", "GET, HEAD, POST"),
            (Method::DELETE, "/api/comments", "GET, HEAD, POST"),
            (Method::POST, "/api/counts", "GET, HEAD"),
            (Method::POST, "/api/admin/comments", "GET, HEAD, DELETE"),
            (Method::GET, "/api/admin/comments/1/approve", "POST"),
            (Method::PUT, "/api/admin/comments/1", "GET, HEAD, DELETE"),
            (Method::POST, "/healthz", "GET, HEAD"),
            (Method::POST, "/readyz", "GET, HEAD"),
            (Method::DELETE, "/metrics", "GET, HEAD"),
        ];
        for (method, path, allow) in cases {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(ADMIN_TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(response.headers()["allow"], allow, "{method} {path}");
            assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
        }
    })
    .await;
}

#[tokio::test]
async fn every_response_says_nosniff() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        for path in [
            "/api/comments?uri=/x/",
            "/nope",
            "/healthz",
            "/api/admin/comments",
        ] {
            let response = app.client.get(app.url(path)).send().await.unwrap();
            assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{path}");
        }
    })
    .await;
}
