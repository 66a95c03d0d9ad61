//! `marginalia import`, `export` and `backup`, run as the binary against a
//! real database of each backend. What was imported is read back through
//! `marginalia export` (every field) and, for the public side, over HTTP
//! from a server started on the same database. Fixtures: tests/fixtures/import/.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Runs the binary with `args` on the database at `url`, with none of the
/// tests' own environment.
pub(crate) fn cli(args: &[&str], url: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_marginalia"));
    command.args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("MARGINALIA_") || key == "DATABASE_URL" || key == "RUST_BACKTRACE" {
            command.env_remove(key);
        }
    }
    command.env("MARGINALIA_DATABASE_URL", url);
    command.output().expect("the binary runs")
}

pub(crate) fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/import/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Imports `file` as `format` and returns the summary; the import must succeed.
pub(crate) fn import(url: &str, format: &str, file: &str, extra: &[&str]) -> String {
    let mut args = vec!["import", format, file];
    args.extend_from_slice(extra);
    let output = cli(&args, url);
    assert!(
        output.status.success(),
        "import {format} {file} failed:\n{}",
        stderr(&output)
    );
    stdout(&output)
}

/// Every comment of the database, through `marginalia export`.
pub(crate) fn export(url: &str) -> Vec<Value> {
    let output = cli(&["export"], url);
    assert!(output.status.success(), "export failed:\n{}", stderr(&output));
    let text = stdout(&output);
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().expect("a header line")).unwrap();
    assert_eq!(header["format"], "marginalia-comments");
    assert_eq!(header["version"], 1);
    lines.map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// How many threads of the database at `url` are closed by a decision
/// (moderators' and imports').
pub(crate) async fn closed_threads(url: &str) -> i64 {
    RawDatabase::connect(url)
        .await
        .count("SELECT COUNT(*) FROM threads WHERE closed")
        .await
}

/// The exported comments by source id.
fn by_source(records: &[Value]) -> HashMap<String, Value> {
    records
        .iter()
        .map(|record| {
            (
                record["source_id"].as_str().unwrap_or("").to_owned(),
                record.clone(),
            )
        })
        .collect()
}

/// The source id of the parent of `record`, or "" for none.
fn parent_source(records: &HashMap<String, Value>, record: &Value) -> String {
    let Some(parent_id) = record["parent_id"].as_i64() else {
        return String::new();
    };
    records
        .values()
        .find(|other| other["id"].as_i64() == Some(parent_id))
        .map(|parent| parent["source_id"].as_str().unwrap().to_owned())
        .expect("the parent exists")
}

/// A body that held scripts, handlers and `javascript:` links shows none of them.
fn assert_sanitized(html: &str) {
    for bad in ["<script", "alert(", "onerror", "onclick", "javascript:", "<img"] {
        assert!(!html.contains(bad), "{bad} survived in {html}");
    }
}

#[tokio::test]
async fn wordpress_comments_keep_their_threads_statuses_authors_and_dates() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let url = database.url();
        let summary = import(url, "wxr", &fixture("wordpress.xml"), &[]);
        assert!(
            summary.contains("Imported 9 comments from wxr: 1 pending, 6 approved, 1 rejected, 1 spam."),
            "{summary}"
        );
        assert!(summary.contains("Skipped: 3."), "{summary}");
        for (reason, id) in [
            ("pingback", "wxr:1:17"),
            ("trackback", "wxr:1:18"),
            ("says nothing once formatting is removed", "wxr:1:21"),
        ] {
            let line = summary
                .lines()
                .position(|line| line.contains(reason))
                .expect(reason);
            assert!(summary.lines().nth(line + 1).unwrap().contains(id), "{summary}");
        }
        assert!(
            summary.contains("website \"javascript:alert(3)\" dropped"),
            "{summary}"
        );
        assert!(
            summary.contains("Closed 1 threads, as they are closed to comments in the source:"),
            "{summary}"
        );
        assert!(summary.contains("/closed-post/ (post 2)"), "{summary}");
        assert_eq!(
            closed_threads(url).await,
            1,
            "the closed post's thread is closed here"
        );

        let records = export(url);
        assert_eq!(records.len(), 9);
        let comments = by_source(&records);
        let first = &comments["wxr:1:11"];
        assert_eq!(first["uri"], "/2020/01/hello/");
        assert_eq!(first["name"], "Zoë Ångström");
        assert_eq!(first["email"], "zoe@reader.example");
        assert_eq!(first["website"], "https://zoe.example/");
        assert_eq!(first["ip"], "203.0.113.7");
        assert_eq!(first["status"], "approved");
        assert_eq!(first["moderated_by"], "import:wxr");
        assert_eq!(first["created_at"], "2020-01-02T10:00:00Z", "comment_date_gmt");
        assert!(
            first["body_html"]
                .as_str()
                .unwrap()
                .contains("<strong>bold</strong>"),
            "{first}"
        );
        // Four levels, the third written before the second in the file.
        assert_eq!(parent_source(&comments, first), "");
        assert_eq!(parent_source(&comments, &comments["wxr:1:12"]), "wxr:1:11");
        assert_eq!(parent_source(&comments, &comments["wxr:1:13"]), "wxr:1:12");
        assert_eq!(parent_source(&comments, &comments["wxr:1:14"]), "wxr:1:13");
        assert_eq!(comments["wxr:1:13"]["name"], "Дмитрий");
        assert_eq!(comments["wxr:1:13"]["ip"], "2001:db8::13");
        assert_eq!(
            comments["wxr:1:12"]["website"],
            Value::Null,
            "`http://` means none"
        );
        assert_eq!(comments["wxr:1:14"]["status"], "pending");
        assert_eq!(comments["wxr:1:14"]["moderated_at"], Value::Null);
        assert_eq!(comments["wxr:1:15"]["status"], "spam");
        assert_eq!(comments["wxr:1:16"]["status"], "rejected");
        let anonymous = &comments["wxr:1:20"];
        assert_eq!(anonymous["name"], "Anonymous");
        assert_eq!(anonymous["email"], "anonymous+1-20@wxr.invalid");
        assert_eq!(anonymous["ip"], Value::Null);
        let hostile = &comments["wxr:1:19"];
        assert_eq!(hostile["website"], Value::Null);
        let html = hostile["body_html"].as_str().unwrap();
        assert_sanitized(html);
        assert!(html.contains("Nice post"), "{html}");
        assert_eq!(comments["wxr:2:31"]["uri"], "/closed-post/");
        for skipped in ["wxr:1:17", "wxr:1:18", "wxr:1:21"] {
            assert!(!comments.contains_key(skipped), "{skipped}");
        }

        // What the public sees: the approved comments, nested.
        let database_url = url.to_owned();
        let mut app = spawn_app_with(backend, move |config| {
            config.database.database_url = Some(database_url);
        })
        .await;
        let thread = app.thread("/2020/01/hello/").await;
        assert_eq!(thread["total"], 5, "{thread}");
        let public = thread["comments"].as_array().unwrap();
        let id_of = |source: &str| comments[source]["id"].as_i64().unwrap();
        let shown: HashMap<i64, &Value> = public.iter().map(|c| (c["id"].as_i64().unwrap(), c)).collect();
        assert_eq!(shown[&id_of("wxr:1:12")]["parent_id"], id_of("wxr:1:11"));
        assert_eq!(shown[&id_of("wxr:1:13")]["parent_id"], id_of("wxr:1:12"));
        assert!(!shown.contains_key(&id_of("wxr:1:14")), "pending is not public");
        assert_sanitized(shown[&id_of("wxr:1:19")]["body_html"].as_str().unwrap());
        let text = serde_json::to_string(&thread).unwrap();
        assert!(
            !text.contains("@reader.example") && !text.contains(".invalid"),
            "{text}"
        );
        app.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_old_wordpress_export_with_plain_values_is_read_and_its_thread_can_come_from_the_guid_or_slug() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let url = database.url();
        let summary = import(
            url,
            "wxr",
            &fixture("wordpress-1.0-plain.xml"),
            &["--uri-from", "guid"],
        );
        assert!(summary.contains("Imported 2 comments"), "{summary}");
        assert!(summary.contains("comment_date was taken as UTC"), "{summary}");
        let comments = by_source(&export(url));
        let first = &comments["wxr:7:70"];
        assert_eq!(first["uri"], "/?p=7");
        assert_eq!(first["name"], "Søren Kierkegaard");
        assert_eq!(first["website"], "http://soren.example");
        assert_eq!(
            first["body_html"],
            "<p>Plain text, with an &amp; and <em>escaped</em> emphasis.</p>\n"
        );
        let reply = &comments["wxr:7:71"];
        assert_eq!(reply["created_at"], "2009-05-02T12:00:00Z");
        assert_eq!(parent_source(&comments, reply), "wxr:7:70");

        let slugs = TestDatabase::create(backend).await;
        import(
            slugs.url(),
            "wxr",
            &fixture("wordpress-1.0-plain.xml"),
            &["--uri-from", "slug"],
        );
        let comments = by_source(&export(slugs.url()));
        assert_eq!(comments["wxr:7:70"]["uri"], "/old-post/");
        let links = TestDatabase::create(backend).await;
        import(links.url(), "wxr", &fixture("wordpress-1.0-plain.xml"), &[]);
        let comments = by_source(&export(links.url()));
        assert_eq!(comments["wxr:7:70"]["uri"], "/2009/05/old-post.html");
    })
    .await;
}

#[tokio::test]
async fn disqus_posts_keep_their_threads_and_deleted_or_spam_posts_are_never_approved() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let url = database.url();
        let summary = import(url, "disqus", &fixture("disqus.xml"), &[]);
        assert!(
            summary.contains("Imported 9 comments from disqus: 0 pending, 6 approved, 1 rejected, 2 spam."),
            "{summary}"
        );
        assert!(
            summary.contains("Closed 1 threads, as they are closed to comments in the source:"),
            "{summary}"
        );
        assert!(summary.contains("/closed-post/ (thread 201)"), "{summary}");
        assert_eq!(closed_threads(url).await, 1, "the closed thread is closed here");
        let comments = by_source(&export(url));
        assert_eq!(comments["disqus:301"]["name"], "Zoë Ångström");
        assert_eq!(comments["disqus:301"]["uri"], "/2020/01/hello/");
        assert_eq!(comments["disqus:301"]["created_at"], "2020-01-02T10:00:00Z");
        assert!(
            comments["disqus:301"]["body_html"]
                .as_str()
                .unwrap()
                .contains("<strong>two</strong>")
        );
        assert_eq!(parent_source(&comments, &comments["disqus:302"]), "disqus:301");
        assert_eq!(parent_source(&comments, &comments["disqus:303"]), "disqus:302");
        assert_eq!(comments["disqus:303"]["name"], "Дмитрий");
        assert_eq!(comments["disqus:304"]["status"], "rejected", "deleted");
        assert_eq!(comments["disqus:305"]["status"], "spam");
        assert_eq!(comments["disqus:306"]["status"], "spam", "deleted spam");
        let guest = &comments["disqus:307"];
        assert_eq!(guest["email"], "anonymous+307@disqus.invalid");
        assert_eq!(guest["status"], "approved");
        assert_sanitized(comments["disqus:308"]["body_html"].as_str().unwrap());
        assert_eq!(
            comments["disqus:401"]["uri"], "/closed-post/",
            "thread defined after the post"
        );
    })
    .await;
}

/// Builds an Isso database file from the readable script of the fixtures.
async fn isso_database(dir: &std::path::Path) -> String {
    use sqlx::Connection;
    let path = dir.join("comments.db");
    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    let script = std::fs::read_to_string(fixture("isso.sql")).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(script))
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn an_isso_database_is_read_directly_with_its_modes_and_replies() {
    let dir = tempfile::tempdir().unwrap();
    let isso = isso_database(dir.path()).await;
    for_each_backend(|backend| {
        let isso = isso.clone();
        async move {
            let database = TestDatabase::create(backend).await;
            let url = database.url();
            let summary = import(url, "isso", &isso, &[]);
            assert!(
                summary.contains("Imported 7 comments from isso: 1 pending, 6 approved, 0 rejected, 0 spam."),
                "{summary}"
            );
            assert!(summary.contains("deleted in Isso"), "{summary}");
            assert!(
                summary.contains("isso:6 → isso:5"),
                "the orphaned reply is listed: {summary}"
            );
            let comments = by_source(&export(url));
            let first = &comments["isso:1"];
            assert_eq!(first["name"], "Zoë Ångström");
            assert_eq!(first["created_at"], "2020-01-02T10:00:00.25Z");
            assert_eq!(first["ip"], "203.0.113.0");
            assert_eq!(first["website"], "https://zoe.example/");
            assert_eq!(
                first["body_html"],
                "<p>Top level, <strong>from</strong> Zoë.</p>\n"
            );
            assert_eq!(parent_source(&comments, &comments["isso:2"]), "isso:1");
            assert_eq!(parent_source(&comments, &comments["isso:3"]), "isso:2");
            assert_eq!(parent_source(&comments, &comments["isso:4"]), "isso:3");
            assert_eq!(comments["isso:4"]["status"], "pending");
            assert!(!comments.contains_key("isso:5"), "mode 4 is skipped");
            assert_eq!(parent_source(&comments, &comments["isso:6"]), "");
            assert_eq!(comments["isso:7"]["name"], "Anonymous");
            assert_eq!(comments["isso:7"]["email"], "anonymous+7@isso.invalid");
            assert_eq!(comments["isso:7"]["uri"], "/other/");
            assert_sanitized(comments["isso:8"]["body_html"].as_str().unwrap());
            assert_eq!(comments["isso:8"]["website"], Value::Null);
        }
    })
    .await;
}

#[tokio::test]
async fn importing_the_same_file_twice_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let isso = isso_database(dir.path()).await;
    for_each_backend(|backend| {
        let isso = isso.clone();
        async move {
            for (format, file, count) in [
                ("wxr", fixture("wordpress.xml"), 9),
                ("disqus", fixture("disqus.xml"), 9),
                ("isso", isso.clone(), 7),
                ("jsonl", fixture("export-hostile.jsonl"), 2),
            ] {
                let database = TestDatabase::create(backend).await;
                let url = database.url();
                import(url, format, &file, &[]);
                let first = export(url);
                assert_eq!(first.len(), count, "{format}");
                let again = import(url, format, &file, &[]);
                assert!(again.contains("Imported 0 comments"), "{format}: {again}");
                assert!(
                    again.contains(&format!("Already present (imported before): {count}.")),
                    "{format}: {again}"
                );
                assert_eq!(export(url), first, "{format}: nothing changed");
                if matches!(format, "wxr" | "disqus") {
                    assert!(
                        again.contains("Left as they are: 1 threads closed in the source"),
                        "{format}: {again}"
                    );
                    assert_eq!(closed_threads(url).await, 1, "{format}");
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_dry_run_says_what_it_would_import_and_writes_nothing() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let url = database.url();
        let summary = import(url, "wxr", &fixture("wordpress.xml"), &["--dry-run"]);
        assert!(summary.contains("Would import 9 comments"), "{summary}");
        assert!(summary.contains("Dry run: nothing was written."), "{summary}");
        assert!(summary.contains("Would close 1 threads"), "{summary}");
        assert!(export(url).is_empty());
        assert_eq!(closed_threads(url).await, 0, "a dry run closes nothing");
    })
    .await;
}

/// A WXR file of `comments` comments on one post, cut off with a broken tag
/// after them when `broken`.
fn generated_wxr(comments: usize, broken: bool) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?>\n<rss xmlns:wp=\"http://wordpress.org/export/1.2/\"><channel><item>\n\
         <link>https://blog.example/big/</link><wp:post_id>5</wp:post_id>\n",
    );
    for id in 1..=comments {
        xml.push_str(&format!(
            "<wp:comment><wp:comment_id>{id}</wp:comment_id><wp:comment_author>Reader {id}</wp:comment_author>\
             <wp:comment_author_email>r{id}@reader.example</wp:comment_author_email>\
             <wp:comment_date_gmt>2020-01-01 00:00:00</wp:comment_date_gmt>\
             <wp:comment_content>Comment {id}</wp:comment_content><wp:comment_approved>1</wp:comment_approved>\
             <wp:comment_parent>{}</wp:comment_parent></wp:comment>\n",
            id / 2
        ));
    }
    if broken {
        xml.push_str("<wp:comment><wp:comment_id>x</wp:comment_author></wp:comment>\n");
    }
    xml.push_str("</item></channel></rss>\n");
    xml
}

#[tokio::test]
async fn a_malformed_file_stops_with_its_line_and_reason_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Past several batches of inserts before the error: they are rolled back too.
    let big = dir.path().join("big-broken.xml");
    std::fs::write(&big, generated_wxr(1_600, true)).unwrap();
    let big = big.display().to_string();
    let not_isso = fixture("disqus.xml");
    for_each_backend(|backend| {
        let big = big.clone();
        let not_isso = not_isso.clone();
        async move {
            for (format, file, expected) in [
                (
                    "wxr",
                    fixture("wordpress-malformed.xml"),
                    vec!["line 205", "comment_contnet"],
                ),
                ("wxr", big.clone(), vec!["line 1604", "comment_author"]),
                (
                    "disqus",
                    fixture("disqus-malformed.xml"),
                    vec!["line 122", "CDATA not closed"],
                ),
                (
                    "jsonl",
                    fixture("export-malformed.jsonl"),
                    vec!["line 3", "EOF while parsing"],
                ),
                ("isso", not_isso.clone(), vec!["not an Isso database"]),
                ("disqus", fixture("wordpress.xml"), vec!["not a Disqus export"]),
                ("wxr", fixture("disqus.xml"), vec!["not a WXR file"]),
            ] {
                let database = TestDatabase::create(backend).await;
                let url = database.url();
                let output = cli(&["import", format, &file], url);
                let message = stderr(&output);
                assert!(!output.status.success(), "{format} {file}: {}", stdout(&output));
                for part in expected {
                    assert!(message.contains(part), "{format} {file}: {part} not in {message}");
                }
                assert!(export(url).is_empty(), "{format} {file}: nothing is written");
                assert_eq!(closed_threads(url).await, 0, "{format} {file}: nothing is closed");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_big_file_in_several_batches_links_every_reply() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.xml");
    std::fs::write(&big, generated_wxr(1_600, false)).unwrap();
    let big = big.display().to_string();
    for_each_backend(|backend| {
        let big = big.clone();
        async move {
            let database = TestDatabase::create(backend).await;
            let url = database.url();
            let summary = import(url, "wxr", &big, &[]);
            assert!(summary.contains("Imported 1600 comments"), "{summary}");
            let comments = by_source(&export(url));
            // Comment n answers n/2: the link crosses batches both ways.
            assert_eq!(parent_source(&comments, &comments["wxr:5:1500"]), "wxr:5:750");
            assert_eq!(parent_source(&comments, &comments["wxr:5:3"]), "wxr:5:1");
            assert_eq!(
                parent_source(&comments, &comments["wxr:5:1"]),
                "",
                "0 is no parent"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn entity_tricks_are_refused_quickly_and_nothing_is_read_from_outside_the_file() {
    for_each_backend(|backend| async move {
        for file in ["billion-laughs.xml", "external-entity.xml"] {
            let database = TestDatabase::create(backend).await;
            let url = database.url();
            let started = Instant::now();
            let output = cli(&["import", "wxr", &fixture(file)], url);
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{file} took {:?}",
                started.elapsed()
            );
            assert!(!output.status.success(), "{file}");
            let message = stderr(&output);
            assert!(message.contains("declares entities"), "{file}: {message}");
            assert!(message.contains("line 3"), "{file}: {message}");
            assert!(!message.contains("root:"), "{file}: {message}");
            assert!(export(url).is_empty(), "{file}");
        }
    })
    .await;
}

#[tokio::test]
async fn our_export_imports_with_its_statuses_dates_and_source_and_never_its_html() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let url = database.url();
        import(url, "jsonl", &fixture("export-hostile.jsonl"), &[]);
        let comments = by_source(&export(url));
        let first = &comments["jsonl:1"];
        assert_eq!(
            first["body_html"], "<p>Innocent <em>text</em>.</p>\n",
            "rendered here"
        );
        assert_eq!(first["moderated_by"], "admin");
        assert_eq!(first["moderated_at"], "2026-11-30T11:00:00Z");
        assert_eq!(first["user_agent"], "Firefox");
        let reply = &comments["wxr:9:99"];
        assert_eq!(reply["status"], "pending");
        assert_sanitized(reply["body_html"].as_str().unwrap());
        assert_eq!(parent_source(&comments, reply), "jsonl:1");
    })
    .await;
}

#[tokio::test]
async fn an_export_imported_into_an_empty_database_gives_back_every_field() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        // Comments of the service itself: every status, three levels, IPs.
        let top = app.publish("/round/trip/", "Top *level*").await;
        let second = app
            .submit_with(json!({"uri": "/round/trip/", "parent_id": top, "body": "Second", "name": "Zoë"}))
            .await;
        assert_eq!(app.moderate(second, "approve").await.status(), StatusCode::OK);
        let third = app
            .submit_with(json!({"uri": "/round/trip/", "parent_id": second, "body": "Third"}))
            .await;
        assert_eq!(app.moderate(third, "approve").await.status(), StatusCode::OK);
        app.submit_with(json!({"uri": "/round/trip/", "parent_id": third, "body": "Fourth, waiting"}))
            .await;
        let rejected = app.submit("/other/", "Rejected").await;
        assert_eq!(app.moderate(rejected, "reject").await.status(), StatusCode::OK);
        let spam = app.submit("/other/", "Spam").await;
        assert_eq!(app.moderate(spam, "spam").await.status(), StatusCode::OK);
        // And imported ones, with their source ids.
        import(app.database_url(), "wxr", &fixture("wordpress.xml"), &[]);
        let original = export(app.database_url());
        assert_eq!(original.len(), 6 + 9);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("export.jsonl");
        let file = file.display().to_string();
        let output = cli(&["export", "--output", &file], app.database_url());
        assert!(output.status.success(), "{}", stderr(&output));
        assert!(stderr(&output).contains("Exported 15 comments."));

        let restored_database = TestDatabase::create(backend).await;
        let summary = import(restored_database.url(), "jsonl", &file, &[]);
        assert!(summary.contains("Imported 15 comments"), "{summary}");
        let restored = export(restored_database.url());
        assert_eq!(restored.len(), original.len());

        // Ids are given anew; a comment without a source gets `jsonl:<old id>`.
        let key = |record: &Value| match record["source_id"].as_str() {
            Some(source) => source.to_owned(),
            None => format!("jsonl:{}", record["id"]),
        };
        let restored_by_key: HashMap<String, &Value> = restored.iter().map(|r| (key(r), r)).collect();
        let original_by_id: HashMap<i64, &Value> =
            original.iter().map(|r| (r["id"].as_i64().unwrap(), r)).collect();
        let restored_by_id: HashMap<i64, &Value> =
            restored.iter().map(|r| (r["id"].as_i64().unwrap(), r)).collect();
        for before in &original {
            let after = restored_by_key[&key(before)];
            let fields = before.as_object().unwrap();
            assert_eq!(fields.len(), after.as_object().unwrap().len(), "{before}");
            for (field, value) in fields {
                match field.as_str() {
                    "id" => {}
                    "source_id" => assert_eq!(after["source_id"], Value::String(key(before))),
                    "parent_id" => {
                        let parent_before = value.as_i64().map(|id| key(original_by_id[&id]));
                        let parent_after = after["parent_id"].as_i64().map(|id| key(restored_by_id[&id]));
                        assert_eq!(parent_before, parent_after, "{before}");
                    }
                    _ => assert_eq!(&after[field], value, "{field} of {before}"),
                }
            }
        }
    })
    .await;
}

#[tokio::test]
async fn backup_copies_a_live_sqlite_database_and_points_postgres_to_pg_dump() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let id = app.publish("/backed/up/", "Keep me").await;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.db");
        let output = cli(&["backup", &path.display().to_string()], app.database_url());
        match backend {
            Backend::Sqlite => {
                assert!(output.status.success(), "{}", stderr(&output));
                // The copy is a database of its own, with the comment in it,
                // while the service goes on answering.
                assert_eq!(app.thread_ids("/backed/up/").await, vec![id]);
                let copy = export(&format!("sqlite://{}", path.display()));
                assert_eq!(copy.len(), 1);
                assert_eq!(copy[0]["body"], "Keep me");
                let again = cli(&["backup", &path.display().to_string()], app.database_url());
                assert!(!again.status.success());
                assert!(stderr(&again).contains("exists already"), "{}", stderr(&again));
            }
            Backend::Postgres => {
                assert!(!output.status.success());
                assert!(stderr(&output).contains("pg_dump"), "{}", stderr(&output));
                assert!(!path.exists());
            }
        }
    })
    .await;
}

#[tokio::test]
async fn a_loop_of_parents_in_the_file_is_broken_and_reported() {
    // 1 answers 2 and 2 answers 1, written at the same second: a widget
    // walking such a tree would never end.
    let dir = tempfile::tempdir().unwrap();
    let looped = dir.path().join("loop.xml");
    let comment = |id: u32, parent: u32| {
        format!(
            "<wp:comment><wp:comment_id>{id}</wp:comment_id><wp:comment_author>R{id}</wp:comment_author>\
             <wp:comment_author_email>r{id}@reader.example</wp:comment_author_email>\
             <wp:comment_date_gmt>2020-01-01 00:00:00</wp:comment_date_gmt>\
             <wp:comment_content>Comment {id}</wp:comment_content><wp:comment_approved>1</wp:comment_approved>\
             <wp:comment_parent>{parent}</wp:comment_parent></wp:comment>"
        )
    };
    std::fs::write(
        &looped,
        format!(
            "<rss xmlns:wp=\"http://wordpress.org/export/1.2/\"><channel><item>\
             <link>https://blog.example/loop/</link><wp:post_id>9</wp:post_id>{}{}</item></channel></rss>",
            comment(1, 2),
            comment(2, 1)
        ),
    )
    .unwrap();
    let looped = looped.display().to_string();
    for_each_backend(|backend| {
        let looped = looped.clone();
        async move {
            let database = TestDatabase::create(backend).await;
            let url = database.url();
            let summary = import(url, "wxr", &looped, &[]);
            assert!(summary.contains("Imported 2 comments"), "{summary}");
            assert!(summary.contains("wxr:9:1 → wxr:9:2"), "{summary}");
            let comments = by_source(&export(url));
            assert_eq!(parent_source(&comments, &comments["wxr:9:2"]), "wxr:9:1");
            assert_eq!(
                parent_source(&comments, &comments["wxr:9:1"]),
                "",
                "the loop is cut"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_placeholder_address_under_invalid_is_never_mailed() {
    use crate::outbox::{MODERATOR, assert_no_more_mail, next_mails, with_mail};
    use crate::smtp_server::SmtpServer;
    for_each_backend(|backend| async move {
        let mut smtp = SmtpServer::start().await;
        let app = spawn_app_with(backend, |config| with_mail(config, smtp.port(), &[MODERATOR])).await;
        // The address an importer gives a guest without one, asking for
        // replies: the moderator hears of the comment, the address nothing.
        app.submit_with(json!({"uri": "/guests/", "email": "anonymous+307@disqus.invalid", "notify": true}))
            .await;
        let mails = next_mails(&mut smtp, 1).await;
        assert_eq!(mails[0].rcpt_to, [MODERATOR]);
        assert_no_more_mail(&mut smtp, "after the moderator's mail").await;
    })
    .await;
}
