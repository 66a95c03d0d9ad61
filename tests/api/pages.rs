//! The widget script, the moderation page and the demo, served by the binary.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn the_widget_script_is_javascript_with_an_etag_and_caching() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.client.get(app.url("/embed.js")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert!(headers["cache-control"].to_str().unwrap().contains("max-age="));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let body = response.text().await.unwrap();
    assert_eq!(body, include_str!("../../assets/embed.js"));

    let cached = app
        .client
        .get(app.url("/embed.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn the_moderation_page_has_a_strict_policy_and_cannot_be_framed() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/admin", "/admin/admin.js", "/admin/admin.css"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let csp = response.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
    let page = app.client.get(app.url("/admin")).send().await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        page.text().await.unwrap(),
        include_str!("../../assets/admin.html")
    );
}

#[tokio::test]
async fn the_demo_post_is_served() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.client.get(app.url("/demo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(
        response.text().await.unwrap(),
        include_str!("../../assets/demo.html")
    );

    let response = app.client.post(app.url("/demo")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}
