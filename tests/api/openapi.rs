//! The OpenAPI description: served as it is in the repository, and it
//! describes exactly the paths and methods the server routes.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

/// Every path the server routes, with the methods it answers (its `Allow`).
/// A new route goes here and into openapi.yaml, or this test fails.
const ROUTES: &[(&str, &str)] = &[
    ("/api/comments", "GET, HEAD, POST"),
    ("/api/counts", "GET, HEAD"),
    ("/feed/recent.atom", "GET, HEAD"),
    ("/feed/thread.atom", "GET, HEAD"),
    ("/api/admin/comments", "GET, HEAD, DELETE"),
    ("/api/admin/comments/{id}", "GET, HEAD, DELETE"),
    ("/api/admin/comments/{id}/approve", "POST"),
    ("/api/admin/comments/{id}/reject", "POST"),
    ("/api/admin/comments/{id}/spam", "POST"),
    ("/api/admin/comments/{id}/pending", "POST"),
    ("/api/admin/rules", "GET, HEAD, PUT"),
    ("/api/form-token", "GET, HEAD"),
    ("/api/admin/stats", "GET, HEAD"),
    ("/api/admin/session", "GET, HEAD, POST, DELETE"),
    ("/api/admin/notifications", "GET, HEAD"),
    ("/api/admin/notifications/test", "POST"),
    ("/api/admin/people", "GET, HEAD, DELETE"),
    ("/api/admin/threads/close", "POST"),
    ("/api/admin/threads/open", "POST"),
    ("/api/admin/threads/rename", "POST"),
    ("/healthz", "GET, HEAD"),
    ("/readyz", "GET, HEAD"),
    ("/metrics", "GET, HEAD"),
    ("/embed.js", "GET, HEAD"),
    ("/embed/locales/{tag}.json", "GET, HEAD"),
    ("/admin", "GET, HEAD"),
    ("/admin/admin.js", "GET, HEAD"),
    ("/admin/admin.css", "GET, HEAD"),
    ("/admin/locales/{tag}.json", "GET, HEAD"),
    ("/demo", "GET, HEAD"),
    ("/openapi.yaml", "GET, HEAD"),
    ("/moderate/{token}", "GET, HEAD, POST"),
    ("/subscribe/{token}", "GET, HEAD, POST"),
    ("/unsubscribe/{token}", "GET, HEAD, POST"),
];

/// The public API's paths also answer CORS preflights (`OPTIONS` with
/// `Origin` and `Access-Control-Request-Method`), documented as operations.
const PREFLIGHT_PATHS: &[&str] = &["/api/comments", "/api/counts"];

const SPEC: &str = include_str!("../../openapi.yaml");

fn spec() -> Value {
    serde_norway::from_str(SPEC).expect("openapi.yaml is YAML")
}

fn methods(allow: &str) -> BTreeSet<String> {
    allow.split(", ").map(str::to_lowercase).collect()
}

#[tokio::test]
async fn the_openapi_description_is_served_as_yaml_with_an_etag() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.client.get(app.url("/openapi.yaml")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/yaml");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let body = response.text().await.unwrap();
    assert_eq!(body, SPEC, "the served description is the file in the repository");
    let parsed: Value = serde_norway::from_str(&body).unwrap();
    assert!(parsed["openapi"].as_str().unwrap().starts_with("3."));

    let cached = app
        .client
        .get(app.url("/openapi.yaml"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    let head = app.client.head(app.url("/openapi.yaml")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["etag"], etag.as_str());
}

#[test]
fn the_description_documents_every_routed_path_and_method_and_no_other() {
    let spec = spec();
    let paths = spec["paths"].as_object().expect("paths");
    let documented: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
    let routed: BTreeSet<&str> = ROUTES.iter().map(|(path, _)| *path).collect();
    assert_eq!(documented, routed, "openapi.yaml paths vs the routes");

    for (path, allow) in ROUTES {
        let operations: BTreeSet<String> = paths[*path]
            .as_object()
            .unwrap()
            .keys()
            .filter(|key| *key != "parameters")
            .cloned()
            .collect();
        let mut expected = methods(allow);
        if PREFLIGHT_PATHS.contains(path) {
            expected.insert("options".into());
        }
        assert_eq!(operations, expected, "{path}");
        // The route template of logs and metrics knows the path too.
        let concrete = path.replace("{id}", "42").replace("{tag}", "pt-BR");
        assert_eq!(marginalia::routes::route_label(&concrete), *path);
    }
}

#[tokio::test]
async fn every_documented_path_is_routed_with_the_documented_methods() {
    let app = spawn_app(Backend::Sqlite).await;
    for (path, allow) in ROUTES {
        // PATCH is on no path: each answers its own 405 naming its methods,
        // which an unrouted path (a 404) cannot.
        let url = app.url(&path.replace("{id}", "1").replace("{tag}", "de"));
        let response = app
            .client
            .request(Method::PATCH, &url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["allow"], *allow, "{path}");
        assert_error(response, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
    for path in PREFLIGHT_PATHS {
        let response = app
            .client
            .request(Method::OPTIONS, app.url(path))
            .header("origin", "https://blog.example")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(response.headers().contains_key("access-control-allow-methods"));
    }
}

#[test]
fn every_reference_resolves() {
    let spec = spec();
    let mut stack = vec![&spec];
    let mut count = 0;
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let pointer = reference.strip_prefix('#').expect("local references only");
                    assert!(spec.pointer(pointer).is_some(), "{reference} resolves");
                    count += 1;
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    assert!(count > 50, "{count} references");
}

/// The source of the error type: what it can answer is read from it, so a
/// new variant's status or code cannot be left out of the description.
const ERROR_SOURCE: &str = include_str!("../../src/error.rs");

/// The numeric status of an `http::StatusCode` constant's name.
fn status_of_constant(name: &str) -> Option<u16> {
    // The constants are named after the reason phrases.
    (100..600).find(|code| {
        StatusCode::from_u16(*code)
            .ok()
            .and_then(|status| status.canonical_reason())
            .is_some_and(|reason| reason.to_uppercase().replace([' ', '-'], "_").replace('\'', "") == name)
    })
}

#[test]
fn every_status_and_code_the_error_type_answers_is_documented() {
    let spec = spec();
    let mut documented = BTreeSet::new();
    for operations in spec["paths"].as_object().unwrap().values() {
        for (method, operation) in operations.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            documented.extend(operation["responses"].as_object().unwrap().keys().cloned());
        }
    }
    let statuses: BTreeSet<&str> = ERROR_SOURCE
        .split("StatusCode::")
        .skip(1)
        .map(|rest| {
            rest.split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                .next()
                .unwrap()
        })
        .collect();
    assert!(statuses.len() >= 12, "{statuses:?}");
    for name in statuses {
        let code = status_of_constant(name).unwrap_or_else(|| panic!("StatusCode::{name} is not a status"));
        assert!(
            documented.contains(&code.to_string()),
            "src/error.rs answers {code} ({name}); no operation in openapi.yaml documents it"
        );
    }

    // The codes are the string literals of `ApiError::code`.
    let code_fn = ERROR_SOURCE
        .split("pub fn code(&self)")
        .nth(1)
        .and_then(|rest| rest.split("\n    }\n").next())
        .expect("ApiError::code in src/error.rs");
    let codes: Vec<&str> = code_fn
        .split("=> \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(codes.len() >= 12, "{codes:?}");
    let enumerated = spec["components"]["schemas"]["Error"]["properties"]["error"]["enum"]
        .as_array()
        .expect("the Error schema enumerates its codes");
    for code in codes {
        assert!(
            enumerated.iter().any(|value| value == code),
            "src/error.rs answers `{code}`; the Error schema in openapi.yaml does not list it"
        );
    }
}
