//! What the learning filter adds to one submission, in CPU, without HTTP or
//! a database: `cargo run --release --example filter_cost`. A submission
//! reads the cached model (`ModelCache::current`), tokenizes the comment and
//! scores it (`comments::submit` → `initial_status`); this times each step
//! against a model trained on 4,000 synthetic comments over a 20,000-word
//! vocabulary (a few hundred thousand distinct tokens with the word pairs,
//! more than a blog's moderators will teach it in years).

use std::hint::black_box;
use std::time::{Duration, Instant};

use marginalia::classifier::{Document, Label, ModelCache, tokenize};

/// The benchmark's comment (bench/lua/common.lua, as `submit_cost`).
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
    println!("{label:<44} {micros:>8.2} µs");
}

/// A deterministic pseudo-random word of a 20,000-word vocabulary, with
/// the benchmark comment's words among the first ones.
fn word(state: &mut u64) -> String {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let n = (*state >> 33) % 20_000;
    const COMMON: [&str; 12] = [
        "thanks",
        "post",
        "the",
        "part",
        "about",
        "writes",
        "production",
        "batch",
        "numbers",
        "commit",
        "looking",
        "forward",
    ];
    match COMMON.get(n as usize) {
        Some(word) => (*word).to_owned(),
        None => format!("w{n}"),
    }
}

fn main() {
    let cache = ModelCache::new(Duration::from_secs(5));
    let mut model = marginalia::classifier::Model::default();
    let mut state = 42_u64;
    for i in 0..4_000 {
        let body: Vec<String> = (0..40).map(|_| word(&mut state)).collect();
        let body = body.join(" ");
        let tokens = tokenize(&Document {
            name: &format!("Writer {}", i % 300),
            email: &format!("someone@site{}.example", i % 50),
            website: None,
            body: &body,
        });
        model.train(&tokens, if i % 2 == 0 { Label::Spam } else { Label::Ham });
    }
    println!(
        "model: {} spam and {} ham examples, {} distinct tokens",
        model.examples(Label::Spam),
        model.examples(Label::Ham),
        model.token_count()
    );
    cache.replace(1, model, Instant::now());
    let document = Document {
        name: "Bench writer 1",
        email: "w1-42@bench.example",
        website: Some("https://bench.example/"),
        body: BODY,
    };
    let rounds = 20_000;
    println!("one submission, mean of {rounds} rounds:");
    time("ModelCache::current (read lock, Arc clone)", rounds, || {
        black_box(cache.current());
    });
    time("tokenize", rounds, || {
        black_box(tokenize(black_box(&document)));
    });
    let model = cache.current();
    let tokens = tokenize(&document);
    println!("({} tokens)", tokens.len());
    time("score", rounds, || {
        black_box(model.score(black_box(&tokens)));
    });
    time("all three", rounds, || {
        let model = cache.current();
        black_box(model.score(&tokenize(black_box(&document))));
    });
}
