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

/// The catalog files of one folder, read from the repository.
fn catalog_file(folder: &str, tag: &str) -> String {
    let path = format!("{}/locales/{folder}/{tag}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

#[tokio::test]
async fn every_widget_catalog_is_served_as_json_readable_from_any_origin_with_an_etag() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(marginalia::routes::pages::LANGUAGES.len(), 15);
    for tag in marginalia::routes::pages::LANGUAGES {
        let path = format!("/embed/locales/{tag}.json");
        let response = app
            .client
            .get(app.url(&path))
            .header("origin", "https://blog.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        assert_eq!(headers["cross-origin-resource-policy"], "cross-origin");
        assert_eq!(headers["cache-control"], "public, max-age=300, must-revalidate");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        let body = response.text().await.unwrap();
        assert_eq!(body, catalog_file("widget", tag), "{path} is the file");
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(parsed["postComment"].is_string(), "{path}");

        let cached = app
            .client
            .get(app.url(&path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), StatusCode::NOT_MODIFIED, "{path}");
        let head = app.client.head(app.url(&path)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK, "{path}");
        assert_eq!(head.headers()["etag"].to_str().unwrap(), etag);
    }
}

#[tokio::test]
async fn every_admin_catalog_is_served_and_revalidated_like_the_page_script() {
    let app = spawn_app(Backend::Sqlite).await;
    for tag in marginalia::routes::pages::LANGUAGES {
        let path = format!("/admin/locales/{tag}.json");
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        assert!(headers.get("access-control-allow-origin").is_none(), "{path}");
        assert!(headers.contains_key("etag"), "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            catalog_file("admin", tag),
            "{path} is the file"
        );
    }
}

#[tokio::test]
async fn a_language_without_a_catalog_is_a_json_404_naming_the_languages() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in [
        "/embed/locales/xx.json",
        "/embed/locales/DE.json",
        "/embed/locales/de",
        "/embed/locales/de.json.gz",
        "/embed/locales/..%2Fadmin%2Fen.json",
        "/admin/locales/sv.json",
        "/admin/locales/pt.json",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let body = assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("zh-Hans") && message.contains("pt-BR"),
            "{path}: {message}"
        );
    }
    let response = app
        .client
        .post(app.url("/embed/locales/de.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}
