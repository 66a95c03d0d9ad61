//! What one submission costs in CPU, stage by stage, without HTTP or a
//! database: `cargo run --release --example submit_cost`. Used to find where
//! the write path's time goes (BENCHMARKS.md, "What stands in the way").

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use marginalia::domain::{CommentBody, Email, render, sanitize};
use marginalia::routes::submission::{SubmissionFormat, parse_submission};
use warp::http::HeaderMap;

/// The benchmark's comment (bench/lua/common.lua), about 350 characters.
const BODY: &str = "Comment 1-42. Thanks for the post: the part about *durable writes* matched what we \
    saw in production. We batch inserts now and the [numbers](https://example.org/n/42) \
    are much better.\n\n- one commit per batch\n- `fsync` once\n\nLooking forward to the next one.";

fn time(label: &str, rounds: u32, mut work: impl FnMut()) {
    for _ in 0..rounds / 10 {
        work();
    }
    let started = Instant::now();
    for _ in 0..rounds {
        work();
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
    println!("{label:<44} {micros:>8.1} µs");
}

fn main() {
    let rounds = 20_000;
    let json = serde_json::json!({
        "uri": "/posts/42/",
        "name": "Bench writer 1",
        "email": "w1-42@bench.example",
        "website": "https://bench.example/",
        "body": BODY,
    })
    .to_string();
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let headers = HeaderMap::new();
    let unsafe_html = {
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(BODY));
        html
    };
    let clean = sanitize(&unsafe_html);

    println!(
        "one submission of {} bytes of JSON, mean of {rounds} rounds:",
        json.len()
    );
    time("whole parse_submission (JSON → NewComment)", rounds, || {
        black_box(parse_submission(SubmissionFormat::Json, json.as_bytes(), client, &headers).unwrap());
    });
    time("  serde_json::from_slice to Value", rounds, || {
        black_box(serde_json::from_slice::<serde_json::Value>(json.as_bytes()).unwrap());
    });
    time("  CommentBody::parse (render + checks)", rounds, || {
        black_box(CommentBody::parse(BODY).unwrap());
    });
    time("    Markdown → HTML (pulldown-cmark)", rounds, || {
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, pulldown_cmark::Parser::new(black_box(BODY)));
        black_box(html);
    });
    time("    render (Markdown → HTML → sanitize)", rounds, || {
        black_box(render(black_box(BODY)));
    });
    time("    sanitize (ammonia, until stable)", rounds, || {
        black_box(sanitize(black_box(&unsafe_html)));
    });
    time("    sanitize of already clean HTML", rounds, || {
        black_box(sanitize(black_box(&clean)));
    });
    // Bodies built to be expensive: nesting makes the HTML parser's work grow
    // with depth × length.
    println!("worst cases (10,000 characters each), one round:");
    for (label, body) in [
        ("nested quotes (> × 9,999)", format!("{}x", ">".repeat(9_999))),
        ("nested lists (- × 4,999)", format!("{}x", "- ".repeat(4_999))),
        ("raw <b> × 3,333", "<b>".repeat(3_333)),
        ("raw <div> × 2,000", "<div>".repeat(2_000)),
        ("raw <p> × 3,333", "<p>".repeat(3_333)),
        ("raw <a> × 3,333", "<a>".repeat(3_333)),
        ("raw <table> × 1,428", "<table>".repeat(1_428)),
        ("emphasis *a* × 3,333", "*a*".repeat(3_333)),
    ] {
        let started = Instant::now();
        let verdict = match CommentBody::parse(&body) {
            Ok(_) => "accepted",
            Err(_) => "refused",
        };
        println!(
            "  {label:<42} {:>8.1} ms ({verdict})",
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    time("  Email::parse (validator)", rounds, || {
        black_box(Email::parse("w1-42@bench.example").unwrap());
    });
}
