//! The XSS corpus (`tests/xss/payloads.jsonl`, see `tests/xss/SOURCES.md`) through the API:
//! every payload as `body`, `name` and `website`, submitted, approved and read back from the
//! public thread. `body_html` is checked by parsing it, against the contract's allow-list.
//! A body that renders to no visible text is refused (422), and whether it says nothing
//! is decided here by parsing the rendering, independently of the service's own check.

use std::collections::{BTreeMap, HashSet};

use futures_util::stream::{self, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::allow_list::allow_list_violations;
use crate::helpers::*;

/// Requests in flight at once: enough to keep the server busy, few enough for SQLite.
const CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
struct Payload {
    id: u64,
    source: String,
    payload: String,
}

fn corpus() -> Vec<Payload> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/xss/payloads.jsonl");
    let text = std::fs::read_to_string(path).expect("tests/xss/payloads.jsonl");
    let payloads: Vec<Payload> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("a JSON line");
            Payload {
                id: row["id"].as_u64().expect("an id"),
                source: row["source"].as_str().expect("a source").to_owned(),
                payload: row["payload"].as_str().expect("a payload").to_owned(),
            }
        })
        .collect();
    assert!(payloads.len() >= 200, "the corpus has {}", payloads.len());
    let distinct: HashSet<&str> = payloads.iter().map(|p| p.payload.as_str()).collect();
    assert_eq!(distinct.len(), payloads.len(), "payloads are distinct");
    payloads
}

fn assert_inside_allow_list(what: &str, payload: &Payload, html: &str) {
    let violations = allow_list_violations(html);
    assert!(
        violations.is_empty(),
        "{what} of payload #{} ({}) {:?} escapes the allow-list: {violations:?}\nbody_html: {html}",
        payload.id,
        payload.source,
        payload.payload,
    );
}

/// Every published comment of `uri`, following `next` page by page (`limit` per page).
async fn whole_thread(app: &TestApp, uri: &str, limit: usize) -> Vec<Value> {
    let mut comments = Vec::new();
    let mut query = format!("uri={}&limit={limit}", encode(uri));
    let mut pages = 0;
    let mut total = None;
    loop {
        let response = app.get_thread(&query).await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        pages += 1;
        let batch = page["comments"].as_array().expect("comments").clone();
        assert!(batch.len() <= limit, "a page holds at most `limit` comments");
        comments.extend(batch);
        let page_total = page["total"].as_u64().expect("a total");
        assert_eq!(
            *total.get_or_insert(page_total),
            page_total,
            "one total on every page"
        );
        match page["next"].as_str() {
            Some(next) => query = format!("uri={}&limit={limit}&after={}", encode(uri), encode(next)),
            None => break,
        }
        assert!(pages < 1_000, "paging does not end");
    }
    assert_eq!(
        total,
        Some(comments.len() as u64),
        "`total` counts the whole thread"
    );
    comments
}

/// Every comment the moderator API lists (with every field), following `next`.
async fn admin_everything(app: &TestApp, status: &str, uri: Option<&str>) -> Vec<Value> {
    let mut comments = Vec::new();
    let base = match uri {
        Some(uri) => format!("status={status}&limit=1000&uri={}", encode(uri)),
        None => format!("status={status}&limit=1000"),
    };
    let mut query = base.clone();
    loop {
        let page = app.admin_list(&query).await;
        comments.extend(page["comments"].as_array().expect("comments").iter().cloned());
        match page["next"].as_str() {
            Some(next) => query = format!("{base}&after={}", encode(next)),
            None => break,
        }
    }
    comments
}

/// A submission with one field set to `value`; the answer's status and JSON.
async fn submit_field(app: &TestApp, uri: &str, field: &str, value: &str) -> (StatusCode, Value) {
    let mut comment = valid_comment();
    merge(&mut comment, json!({ "uri": uri, field: value }));
    if field != "body" {
        // One body per submission: the same one twice would be a duplicate (409).
        static SENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        comment["body"] = json!(format!("A harmless body ({n})."));
    }
    let response = app.post_json(&comment).await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// Submits every payload as `field` on `uri`, CONCURRENCY at a time, in corpus order.
async fn submit_all(app: &TestApp, corpus: &[Payload], uri: &str, field: &str) -> Vec<(StatusCode, Value)> {
    stream::iter(corpus)
        .map(|payload| submit_field(app, uri, field, &payload.payload))
        .buffered(CONCURRENCY)
        .collect()
        .await
}

async fn approve_all(app: &TestApp, ids: &[i64]) {
    let statuses: Vec<StatusCode> = stream::iter(ids)
        .map(|&id| async move { app.moderate(id, "approve").await.status() })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
}

/// Characters that draw nothing, as the rule for names and bodies counts them (written
/// from the contract's examples, not from the service's list).
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}'
        )
}

/// The bidirectional embedding, override and isolate characters names, uris and websites refuse.
fn bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// True when `html` shows no visible character once parsed (as a browser would).
fn shows_nothing(html: &str) -> bool {
    scraper::Html::parse_fragment(html)
        .root_element()
        .text()
        .all(|text| text.chars().all(invisible))
}

/// A 422 that names `field` and no other (the rest of the submission is valid).
fn assert_refused_on(field: &str, payload: &Payload, answer: &Value) {
    assert_eq!(answer["error"], "validation", "#{}: {answer}", payload.id);
    let fields = answer["fields"].as_object().expect("fields");
    assert!(
        fields.contains_key(field) && fields.len() == 1,
        "#{} refused on other fields: {answer}",
        payload.id
    );
}

/// The published comments of `uri`, by id.
async fn published_by_id(app: &TestApp, uri: &str) -> BTreeMap<i64, Value> {
    whole_thread(app, uri, 200)
        .await
        .into_iter()
        .map(|c| (c["id"].as_i64().unwrap(), c))
        .collect()
}

#[test]
fn the_allow_list_check_catches_what_it_must() {
    // The checker itself must be able to fail, or the corpus test proves nothing.
    let ok = "<p>a <strong>b</strong> <a href=\"https://example.org/\" rel=\"nofollow ugc noopener noreferrer\">c</a></p>\n<ul><li><code>x</code></li></ul><br>";
    assert_eq!(allow_list_violations(ok), Vec::<String>::new());
    assert_eq!(allow_list_violations("plain &lt;text&gt;"), Vec::<String>::new());
    for bad in [
        "<img src=x>",
        "<p onclick=x>a</p>",
        "<p title=t>a</p>",
        "<a href=\"javascript:alert(1)\" rel=\"nofollow ugc noopener noreferrer\">a</a>",
        "<a href=\"/relative\" rel=\"nofollow ugc noopener noreferrer\">a</a>",
        "<a href=\"https://example.org/\">no rel</a>",
        "<a href=\"https://example.org/\" rel=\"opener\">a</a>",
        "<a rel=\"nofollow ugc noopener noreferrer\" target=_blank>a</a>",
        "<svg><a rel=\"nofollow ugc noopener noreferrer\">svg a</a></svg>",
        "<math><mtext><p>x</p></mtext></math>",
        "<!-- a comment -->",
        "<style>p{}</style>",
        "<span>x</span>",
    ] {
        assert!(!allow_list_violations(bad).is_empty(), "{bad} passed");
    }
}

#[tokio::test]
async fn every_corpus_payload_stays_inside_the_allow_list_and_plain_in_name_and_website() {
    let corpus = corpus();
    let submissions = u32::try_from(corpus.len() * 3 + 10).unwrap();
    for_each_backend(|backend| {
        let corpus = corpus.clone();
        async move {
            let started = std::time::Instant::now();
            // Every submission comes from 127.0.0.1: raise the limit above the corpus' size.
            let app = spawn_app_with(backend, |config| {
                config.rate_limit_burst = std::num::NonZeroU32::new(submissions).unwrap();
                config.rate_limit_per_minute = std::num::NonZeroU32::new(submissions).unwrap();
            })
            .await;

            // What must not change: an approved and a pending comment of another page.
            let canary = "/xss/canary/";
            let approved = app
                .publish(canary, "An **approved** comment, <em>before</em> the corpus.")
                .await;
            let pending = app
                .submit_with(json!({"uri": canary, "name": "Pending Pat", "body": "Still pending."}))
                .await;
            let canary_before = (
                admin_everything(&app, "approved", Some(canary)).await,
                admin_everything(&app, "pending", Some(canary)).await,
                app.thread(canary).await,
            );
            assert_eq!(ids(&json!(canary_before.0)), vec![approved]);
            assert_eq!(ids(&json!(canary_before.1)), vec![pending]);

            // --- as the body
            let uri = "/xss/body/";
            let answers = submit_all(&app, &corpus, uri, "body").await;
            let mut accepted = BTreeMap::new();
            let mut blank = Vec::new();
            for (payload, (status, answer)) in corpus.iter().zip(&answers) {
                if *status == StatusCode::UNPROCESSABLE_ENTITY {
                    // Only what the contract (openapi.yaml) refuses: control characters other than tab, CR and
                    // LF, and a body that says nothing once formatting is removed.
                    let controls = payload
                        .payload
                        .chars()
                        .any(|c| c.is_control() && !['\t', '\r', '\n'].contains(&c));
                    let says_nothing = shows_nothing(&marginalia::domain::render(payload.payload.trim()));
                    assert!(controls || says_nothing, "#{} refused as a body: {answer}", payload.id);
                    assert_refused_on("body", payload, answer);
                    if !controls {
                        assert_eq!(
                            answer["fields"]["body"], "says nothing once formatting is removed",
                            "#{}", payload.id
                        );
                        blank.push(payload.clone());
                    }
                    continue;
                }
                assert_eq!(*status, StatusCode::ACCEPTED, "#{}: {answer}", payload.id);
                assert_eq!(answer["status"], "pending");
                let html = answer["body_html"].as_str().expect("body_html");
                assert_inside_allow_list("the 202's body_html", payload, html);
                assert!(!shows_nothing(html), "#{}: accepted with a blank body_html {html:?}", payload.id);
                accepted.insert(answer["id"].as_i64().unwrap(), (payload, html.to_owned()));
            }
            // A payload refused for saying nothing still goes through the sanitizer and
            // out to the public, followed by a visible paragraph (unless the payload
            // swallows it, as an unclosed `<script>` does: then it says nothing again).
            let followed: Vec<Payload> = blank
                .iter()
                .map(|payload| Payload {
                    payload: format!("{}\n\nStill here.", payload.payload),
                    ..payload.clone()
                })
                .collect();
            let mut still_blank = 0;
            for (payload, (status, answer)) in followed.iter().zip(submit_all(&app, &followed, uri, "body").await) {
                if status == StatusCode::UNPROCESSABLE_ENTITY {
                    assert!(shows_nothing(&marginalia::domain::render(payload.payload.trim())), "#{}: {answer}", payload.id);
                    assert_eq!(answer["fields"]["body"], "says nothing once formatting is removed");
                    still_blank += 1;
                    continue;
                }
                assert_eq!(status, StatusCode::ACCEPTED, "#{}: {answer}", payload.id);
                let html = answer["body_html"].as_str().expect("body_html");
                assert_inside_allow_list("the 202's body_html", payload, html);
                assert!(!shows_nothing(html), "#{}: accepted with a blank body_html {html:?}", payload.id);
                let original = corpus.iter().find(|p| p.id == payload.id).expect("the payload");
                accepted.insert(answer["id"].as_i64().unwrap(), (original, html.to_owned()));
            }
            let ids_accepted: Vec<i64> = accepted.keys().copied().collect();
            approve_all(&app, &ids_accepted).await;
            // Small pages, to go through the paging of the thread endpoint too.
            let thread = whole_thread(&app, uri, 100).await;
            assert_eq!(
                ids(&json!(thread)),
                ids_accepted,
                "every body published, oldest first"
            );
            for comment in &thread {
                let (payload, submitted_html) = &accepted[&comment["id"].as_i64().unwrap()];
                let html = comment["body_html"].as_str().expect("body_html");
                assert_inside_allow_list("the public body_html", payload, html);
                assert_eq!(html, submitted_html, "#{}: published as previewed", payload.id);
            }
            eprintln!(
                "body: {} payloads, {} accepted and inside the allow-list ({} of them followed by a paragraph), \
                 {} refused for control characters, {} for saying nothing ({still_blank} even when followed by a paragraph)",
                corpus.len(),
                accepted.len(),
                blank.len() - still_blank,
                corpus.len() - (accepted.len() - (blank.len() - still_blank)) - blank.len(),
                blank.len(),
            );

            // --- as the name: refused on `name`, or published verbatim (trimmed) as JSON text
            let uri = "/xss/name/";
            let answers = submit_all(&app, &corpus, uri, "name").await;
            let mut kept = BTreeMap::new();
            let mut refused = 0;
            for (payload, (status, answer)) in corpus.iter().zip(&answers) {
                // the contract's rule for names, and no other: markup alone is no reason to refuse.
                let trimmed = payload.payload.trim();
                let against_the_rule = trimmed.chars().all(invisible)
                    || trimmed.chars().count() > 80
                    || trimmed.chars().any(char::is_control)
                    || trimmed.chars().any(bidi_control);
                assert_eq!(
                    *status == StatusCode::UNPROCESSABLE_ENTITY,
                    against_the_rule,
                    "#{} as a name: {answer}",
                    payload.id
                );
                if *status == StatusCode::UNPROCESSABLE_ENTITY {
                    assert_refused_on("name", payload, answer);
                    refused += 1;
                    continue;
                }
                assert_eq!(*status, StatusCode::ACCEPTED, "#{}: {answer}", payload.id);
                assert_eq!(answer["name"], payload.payload.trim(), "#{}", payload.id);
                kept.insert(answer["id"].as_i64().unwrap(), payload);
            }
            approve_all(&app, &kept.keys().copied().collect::<Vec<_>>()).await;
            let published = published_by_id(&app, uri).await;
            assert_eq!(
                published.keys().collect::<Vec<_>>(),
                kept.keys().collect::<Vec<_>>()
            );
            for (id, payload) in &kept {
                assert_eq!(
                    published[id]["name"].as_str(),
                    Some(payload.payload.trim()),
                    "#{}: the name is data, published as sent",
                    payload.id
                );
            }
            eprintln!(
                "name: {refused} refused (422 on name), {} kept as plain text",
                kept.len()
            );

            // --- as the website: refused on `website`, or an http(s) URL
            let uri = "/xss/website/";
            let answers = submit_all(&app, &corpus, uri, "website").await;
            let mut kept = BTreeMap::new();
            let mut refused = 0;
            for (payload, (status, answer)) in corpus.iter().zip(&answers) {
                if *status == StatusCode::UNPROCESSABLE_ENTITY {
                    assert_refused_on("website", payload, answer);
                    refused += 1;
                    continue;
                }
                assert_eq!(*status, StatusCode::ACCEPTED, "#{}: {answer}", payload.id);
                kept.insert(answer["id"].as_i64().unwrap(), payload);
            }
            approve_all(&app, &kept.keys().copied().collect::<Vec<_>>()).await;
            let published = published_by_id(&app, uri).await;
            assert_eq!(
                published.keys().collect::<Vec<_>>(),
                kept.keys().collect::<Vec<_>>()
            );
            for (id, payload) in &kept {
                let website = published[id]["website"].as_str().expect("a website");
                let url = url::Url::parse(website).unwrap_or_else(|e| {
                    panic!(
                        "#{}: the published website {website:?} is no URL: {e}",
                        payload.id
                    )
                });
                assert!(
                    ["http", "https"].contains(&url.scheme()),
                    "#{}: published website {website:?}",
                    payload.id
                );
                assert!(url.host_str().is_some_and(|h| !h.is_empty()), "{website:?}");
            }
            eprintln!(
                "website: {refused} refused (422 on website), {} kept as http(s) URLs",
                kept.len()
            );

            // Nothing else changed: the other page's comments, every field of them, and no
            // comment anywhere but on the four pages.
            let canary_after = (
                admin_everything(&app, "approved", Some(canary)).await,
                admin_everything(&app, "pending", Some(canary)).await,
                app.thread(canary).await,
            );
            assert_eq!(
                canary_after, canary_before,
                "the other page's comments are unchanged"
            );
            let everything = admin_everything(&app, "approved", None).await;
            let mut per_uri: BTreeMap<String, usize> = BTreeMap::new();
            for comment in &everything {
                *per_uri
                    .entry(comment["uri"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
            let expected: BTreeMap<String, usize> = [
                (canary.to_owned(), 1),
                ("/xss/body/".to_owned(), accepted.len()),
                (
                    "/xss/name/".to_owned(),
                    published_by_id(&app, "/xss/name/").await.len(),
                ),
                ("/xss/website/".to_owned(), kept.len()),
            ]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
            assert_eq!(per_uri, expected, "approved comments, per page");
            assert_eq!(
                admin_everything(&app, "pending", None).await.len(),
                1,
                "only the canary is pending"
            );
            for status in ["rejected", "spam"] {
                assert!(admin_everything(&app, status, None).await.is_empty(), "{status}");
            }
            eprintln!("--- {backend:?}: {:.1?}", started.elapsed());
        }
    })
    .await;
}
