//! Bodies are Markdown, rendered and sanitized to the allow-list of the contract (openapi.yaml).

use serde_json::Value;

use crate::helpers::*;

/// Publishes `body` and returns its `body_html` as the public sees it.
async fn published_html(app: &TestApp, body: &str) -> String {
    let uri = format!("/s/{}/", uuid::Uuid::new_v4().simple());
    app.publish(&uri, body).await;
    let thread: Value = app.thread(&uri).await;
    thread["comments"][0]["body_html"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn markdown_is_rendered_into_allowed_tags() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let html = published_html(
            &app,
            "**bold** *em* ~~del~~ `code`\n\n> quote\n\n- item\n\n1. first\n\n```\npre\n```\n\n[link](https://example.org/)",
        )
        .await;
        for expected in [
            "<strong>bold</strong>",
            "<em>em</em>",
            "<del>del</del>",
            "<code>code</code>",
            "<blockquote>",
            "<ul>",
            "<ol>",
            "<pre><code>pre\n</code></pre>",
            "<a href=\"https://example.org/\" rel=\"nofollow ugc noopener noreferrer\">link</a>",
        ] {
            assert!(html.contains(expected), "{expected} missing from {html}");
        }
    })
    .await;
}

#[tokio::test]
async fn scripts_handlers_dangerous_links_and_styles_are_removed_keeping_the_text() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let cases = [
            ("before <script>alert(1)</script> after", ["<script", "alert"]),
            ("<img src=x onerror=alert(1)> after", ["<img", "onerror"]),
            (
                "<a href=\"#\" onclick=\"alert(1)\">after</a>",
                ["onclick", "alert"],
            ),
            ("[after](javascript:alert(1))", ["javascript", "href"]),
            ("[after](JaVaScRiPt:alert(1))", ["avascript", "href"]),
            ("<p style=\"background:url(x)\">after</p>", ["style", "url("]),
            ("<svg onload=alert(1)></svg>after", ["<svg", "onload"]),
            (
                "<iframe src=\"https://evil.example\"></iframe>after",
                ["<iframe", "evil"],
            ),
            (
                "<span title=\"t\" class=\"c\" id=\"i\">after</span>",
                ["title", "class"],
            ),
        ];
        for (body, forbidden) in cases {
            let html = published_html(&app, body).await;
            for needle in forbidden {
                assert!(
                    !html.to_lowercase().contains(needle),
                    "{body:?} kept {needle}: {html}"
                );
            }
            assert!(html.contains("after"), "{body:?} lost its text: {html}");
        }
    })
    .await;
}

#[tokio::test]
async fn names_are_plain_text() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let uri = "/s/name/";
        let id = app
            .submit_with(serde_json::json!({"uri": uri, "name": "<b onmouseover=x>Eve</b>"}))
            .await;
        app.moderate(id, "approve").await;
        let thread = app.thread(uri).await;
        // Carried verbatim as JSON text; renderers insert it as text, never HTML.
        assert_eq!(thread["comments"][0]["name"], "<b onmouseover=x>Eve</b>");
    })
    .await;
}
