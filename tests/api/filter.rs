//! The learning spam filter. Its store contract: a moderator's decision is
//! kept as the comment's example, a changed decision moves it, counts stay
//! exact under concurrent decisions, deleting a comment keeps what was
//! learned, and every instance's in-process copy follows the stored model.
//! Then the service over HTTP: trained by moderators' decisions through the
//! moderator API, it scores each new comment, sends what it is sure of to
//! spam once ready (`auto:filter`, `filter:0.997`), never with a threshold
//! of 1, and learns nothing from automatic decisions.

use std::sync::Arc;
use std::time::Duration;

use marginalia::classifier::{Document, Label, Model, ModelCache, tokenize};
use marginalia::domain::Status;
use marginalia::store::Store;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::store::{new_comment, open_store};

async fn insert(store: &Store, body: &str) -> i64 {
    store
        .insert_comment(&new_comment("/filter/", body, None), Status::Pending, false)
        .await
        .unwrap()
        .unwrap()
        .id
}

fn tokens(body: &str) -> Vec<String> {
    tokenize(&Document {
        body,
        ..Document::default()
    })
}

async fn model(store: &Store) -> (i64, Model) {
    store.load_classifier().await.unwrap()
}

#[tokio::test]
async fn a_decision_is_kept_as_an_example_and_a_changed_decision_moves_it() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let store = open_store(&database).await;
        let (first, second) = (
            insert(&store, "cheap pills").await,
            insert(&store, "kind words").await,
        );
        let (pills, kind) = (tokens("cheap pills"), tokens("kind words"));

        let (start, empty) = model(&store).await;
        assert_eq!(empty, Model::default());
        let learned = store
            .learn(first, Some((Label::Spam, &pills)))
            .await
            .unwrap()
            .expect("a new example");
        assert_eq!(learned.version, start + 1);
        store
            .learn(second, Some((Label::Ham, &kind)))
            .await
            .unwrap()
            .unwrap();
        let (version, trained) = model(&store).await;
        assert_eq!(version, start + 2);
        assert_eq!(
            (trained.examples(Label::Spam), trained.examples(Label::Ham)),
            (1, 1)
        );
        assert_eq!(trained.counts("pills").spam, 1);
        assert_eq!(trained.counts("kind").ham, 1);

        // The same decision again changes nothing, not even the version.
        assert!(
            store
                .learn(first, Some((Label::Spam, &pills)))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(model(&store).await.0, version);

        // The moderator changes their mind: the example moves to ham.
        store
            .learn(first, Some((Label::Ham, &pills)))
            .await
            .unwrap()
            .unwrap();
        let (_, moved) = model(&store).await;
        assert_eq!((moved.examples(Label::Spam), moved.examples(Label::Ham)), (0, 2));
        assert_eq!((moved.counts("pills").spam, moved.counts("pills").ham), (0, 1));
        let example = store.classifier_example(first).await.unwrap().unwrap();
        assert_eq!((example.label, example.tokens), (Label::Ham, pills.clone()));

        // Forgotten: the counts are as if it had never been trained.
        store.learn(first, None).await.unwrap().unwrap();
        assert!(store.classifier_example(first).await.unwrap().is_none());
        let (_, forgotten) = model(&store).await;
        let mut expected = Model::default();
        expected.train(&kind, Label::Ham);
        assert_eq!(forgotten, expected);
        assert!(
            store.learn(first, None).await.unwrap().is_none(),
            "nothing left to forget"
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_a_comment_keeps_what_was_learned_from_it() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let store = open_store(&database).await;
        let id = insert(&store, "buy followers").await;
        store
            .learn(id, Some((Label::Spam, &tokens("buy followers"))))
            .await
            .unwrap()
            .unwrap();
        store.delete_comment(id).await.unwrap().expect("deleted");
        assert!(store.classifier_example(id).await.unwrap().is_none());
        let (_, model) = model(&store).await;
        assert_eq!(
            model.examples(Label::Spam),
            1,
            "emptying the spam folder forgets nothing"
        );
        assert_eq!(model.counts("followers").spam, 1);
    })
    .await;
}

#[tokio::test]
async fn concurrent_decisions_on_shared_tokens_keep_exact_counts() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let store = open_store(&database).await;
        let mut ids = Vec::new();
        for i in 0..16 {
            ids.push(insert(&store, &format!("comment {i}")).await);
        }
        let shared = tokens("casino bonus offer today");
        let tasks: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let (store, shared) = (store.clone(), shared.clone());
                tokio::spawn(async move {
                    let label = if i % 4 == 0 { Label::Ham } else { Label::Spam };
                    store.learn(id, Some((label, &shared))).await.unwrap().unwrap();
                    // Half of them change their mind at once.
                    if i % 2 == 1 {
                        store
                            .learn(id, Some((Label::Ham, &shared)))
                            .await
                            .unwrap()
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // 16 examples: odd ones (8) ended as ham, multiples of 4 (4) are
        // ham, the other 4 stay spam.
        let (version, model) = model(&store).await;
        assert_eq!((model.examples(Label::Spam), model.examples(Label::Ham)), (4, 12));
        assert_eq!(model.counts("casino").spam, 4);
        assert_eq!(model.counts("casino").ham, 12);
        assert_eq!(version, 16 + 8, "one version per change");
    })
    .await;
}

#[tokio::test]
async fn every_instance_cache_follows_the_stored_model() {
    for_each_backend(|backend| async move {
        let database = TestDatabase::create(backend).await;
        let (here, there) = (open_store(&database).await, open_store(&database).await);
        let id = insert(&here, "cheap pills").await;

        let slow = ModelCache::new(Duration::from_secs(3600));
        let quick = ModelCache::new(Duration::ZERO);
        assert_eq!(
            there.classifier_model(&slow).await.unwrap().examples(Label::Spam),
            0
        );
        assert_eq!(
            there
                .classifier_model(&quick)
                .await
                .unwrap()
                .examples(Label::Spam),
            0
        );

        let learned = here
            .learn(id, Some((Label::Spam, &tokens("cheap pills"))))
            .await
            .unwrap()
            .unwrap();
        let seen: Arc<Model> = there.classifier_model(&quick).await.unwrap();
        assert_eq!(seen.counts("cheap").spam, 1, "a changed version is reloaded");
        assert_eq!(
            there.classifier_model(&slow).await.unwrap().examples(Label::Spam),
            0,
            "a fresh cache is not checked before its delay"
        );

        // The instance that decided applies its own change without a reload.
        let own = ModelCache::new(Duration::from_secs(3600));
        let (version, before) = here.load_classifier().await.unwrap();
        let mut earlier = before.clone();
        earlier.untrain(&tokens("cheap pills"), Label::Spam);
        own.replace(version - 1, earlier, std::time::Instant::now());
        own.apply(learned.version, &learned.change);
        assert_eq!(*here.classifier_model(&own).await.unwrap(), before);
    })
    .await;
}

// --- The filter wired into the service, over HTTP ---

/// Words spam examples are made of; each example takes several, so every
/// word recurs across the spam and none in the ham.
const SPAM_WORDS: [&str; 12] = [
    "casino",
    "bonus",
    "jackpot",
    "viagra",
    "replica",
    "watches",
    "crypto",
    "giveaway",
    "followers",
    "discount",
    "payday",
    "loans",
];
/// Words ham examples are made of.
const HAM_WORDS: [&str; 12] = [
    "thoughtful",
    "essay",
    "argument",
    "chapter",
    "garden",
    "recipe",
    "grandmother",
    "library",
    "winter",
    "poetry",
    "bicycle",
    "museum",
];

/// A distinct comment of `words`, the `n`th of its kind.
fn made_of(words: &[&str; 12], n: usize) -> String {
    let pick = |k: usize| words[(n * 5 + k * 7) % words.len()];
    format!(
        "{} {} {} {} {} and {} number {n}",
        pick(0),
        pick(1),
        pick(2),
        pick(3),
        pick(4),
        pick(5)
    )
}

fn spammy(n: usize) -> serde_json::Value {
    json!({
        "uri": "/filter/",
        "name": format!("Best Deals {n}"),
        "email": format!("promo{n}@deals.example"),
        "website": "https://deals.example/",
        "body": made_of(&SPAM_WORDS, n),
    })
}

fn hammy(n: usize) -> serde_json::Value {
    json!({
        "uri": "/filter/",
        "name": format!("Reader {n}"),
        "email": format!("reader{n}@example.org"),
        "website": "",
        "body": made_of(&HAM_WORDS, n),
    })
}

/// Submits `spam` spammy and `ham` hammy comments and has the moderator API
/// mark each as spam or approve it, as a moderator working the queue does.
async fn train_through_moderation(app: &TestApp, spam: usize, ham: usize, from: usize) {
    for n in from..from + spam {
        let id = app.submit_with(spammy(n)).await;
        assert_eq!(app.moderate(id, "spam").await.status(), StatusCode::OK);
    }
    for n in from..from + ham {
        let id = app.submit_with(hammy(n)).await;
        assert_eq!(app.moderate(id, "approve").await.status(), StatusCode::OK);
    }
}

/// Submits and returns the public answer's body and the moderator's view.
async fn submit_and_look(
    app: &TestApp,
    comment: serde_json::Value,
) -> (serde_json::Value, serde_json::Value) {
    let mut sent = valid_comment();
    merge(&mut sent, comment);
    let response = app.post_json(&sent).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED, "every outcome is a 202");
    let answer: serde_json::Value = response.json().await.unwrap();
    let id = answer["id"].as_i64().unwrap();
    (answer.clone(), app.admin_comment(id).await)
}

/// Examples per kind, as stored.
async fn examples(app: &TestApp) -> (u64, u64) {
    let store = Store::connect(app.database_url()).await.unwrap();
    let (_, model) = store.load_classifier().await.unwrap();
    store.close().await;
    (model.examples(Label::Spam), model.examples(Label::Ham))
}

fn score_of(comment: &serde_json::Value) -> f64 {
    comment["spam_score"]
        .as_f64()
        .unwrap_or_else(|| panic!("a score: {comment}"))
}

#[tokio::test]
async fn a_filter_trained_by_moderators_sends_spam_to_the_spam_folder_and_leaves_the_rest_queued() {
    for_each_backend(|backend| async move {
        let mut app = spawn_app(backend).await;
        train_through_moderation(&app, 50, 50, 0).await;
        assert_eq!(examples(&app).await, (50, 50));

        let (answer, spam) = submit_and_look(&app, spammy(1000)).await;
        assert_eq!(spam["status"], "spam", "{spam}");
        assert_eq!(spam["moderated_by"], "auto:filter");
        let reasons = spam["reasons"].as_array().unwrap();
        assert_eq!(reasons.len(), 1, "{spam}");
        let reason = reasons[0].as_str().unwrap();
        let shown: f64 = reason.strip_prefix("filter:").unwrap().parse().unwrap();
        assert!(score_of(&spam) >= 0.99, "{spam}");
        assert!((score_of(&spam) - shown).abs() < 0.001, "{reason} is the score");
        let clues = spam["spam_clues"].as_array().unwrap();
        assert!(!clues.is_empty() && clues.len() <= 5, "{spam}");
        assert!(
            clues
                .iter()
                .all(|clue| clue["token"].is_string() && clue["probability"].as_f64().unwrap() > 0.5),
            "the clues of spam say spam: {spam}"
        );
        assert!(
            !clues
                .iter()
                .any(|clue| clue["token"].as_str().unwrap().contains("promo1000")),
            "never the address itself: {spam}"
        );
        // The reader learns nothing, and the public never sees the score.
        assert_eq!(answer["status"], "pending", "{answer}");
        assert!(
            answer.get("spam_score").is_none() && answer.get("spam_clues").is_none(),
            "{answer}"
        );
        assert!(
            !app.thread_ids("/filter/")
                .await
                .contains(&spam["id"].as_i64().unwrap())
        );

        let (_, ham) = submit_and_look(&app, hammy(1000)).await;
        assert_eq!(ham["status"], "pending", "{ham}");
        assert_eq!(ham["reasons"], json!([]));
        assert!(ham["moderated_by"].is_null());
        assert!(score_of(&ham) < 0.1, "{ham}");
        assert!(
            ham["spam_clues"]
                .as_array()
                .unwrap()
                .iter()
                .all(|clue| clue["probability"].as_f64().unwrap() < 0.5),
            "{ham}"
        );

        // The filter's own decision taught it nothing.
        assert_eq!(examples(&app).await, (50, 50));
        // Likely ham first when sorted by score.
        let queue = app.admin_list("status=pending&sort=score").await;
        assert_eq!(queue["comments"][0]["id"], ham["id"]);

        // A threshold of 1 turns the automatic spam off; scores remain.
        app.config.filter_spam_at = 1.0;
        let app = app.restart().await;
        let (_, kept) = submit_and_look(&app, spammy(1001)).await;
        assert_eq!(kept["status"], "pending", "{kept}");
        assert_eq!(kept["reasons"], json!([]));
        assert!(kept["moderated_by"].is_null());
        assert!(score_of(&kept) >= 0.99, "{kept}");
    })
    .await;
}

#[tokio::test]
async fn an_unready_filter_scores_but_never_sends_to_spam() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let (_, unscored) = submit_and_look(&app, spammy(0)).await;
        assert!(
            unscored["spam_score"].is_null(),
            "nothing learned, no score: {unscored}"
        );
        assert_eq!(unscored["spam_clues"], json!([]));

        train_through_moderation(&app, 50, 49, 1).await;
        let (_, spam) = submit_and_look(&app, spammy(1000)).await;
        assert!(score_of(&spam) >= 0.99, "{spam}");
        assert_eq!(
            spam["status"], "pending",
            "49 ham examples are not enough: {spam}"
        );
        assert_eq!(spam["reasons"], json!([]));
        assert!(spam["moderated_by"].is_null());
    })
    .await;
}

#[tokio::test]
async fn moderators_decisions_move_the_example_and_automatic_ones_teach_nothing() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let store = Store::connect(app.database_url()).await.unwrap();
        let id = app.submit_with(spammy(7)).await;
        let example = async |id| {
            store
                .classifier_example(id)
                .await
                .unwrap()
                .map(|example| example.label)
        };

        assert_eq!(app.moderate(id, "approve").await.status(), StatusCode::OK);
        assert_eq!(example(id).await, Some(Label::Ham));
        assert_eq!(examples(&app).await, (0, 1));
        // Approved, then marked as spam: the ham example becomes a spam one.
        assert_eq!(app.moderate(id, "spam").await.status(), StatusCode::OK);
        assert_eq!(example(id).await, Some(Label::Spam));
        assert_eq!(examples(&app).await, (1, 0));
        let (_, model) = store.load_classifier().await.unwrap();
        assert_eq!(model.counts("name:deals").spam, 1);
        assert_eq!(model.counts("name:deals").ham, 0);
        // Repeating it changes nothing.
        assert_eq!(app.moderate(id, "spam").await.status(), StatusCode::OK);
        assert_eq!(examples(&app).await, (1, 0));
        // Back to the queue, or rejected: the example is forgotten.
        assert_eq!(app.moderate(id, "pending").await.status(), StatusCode::OK);
        assert_eq!(example(id).await, None);
        assert_eq!(examples(&app).await, (0, 0));
        assert_eq!(app.moderate(id, "approve").await.status(), StatusCode::OK);
        assert_eq!(app.moderate(id, "reject").await.status(), StatusCode::OK);
        assert_eq!(example(id).await, None);
        assert_eq!(examples(&app).await, (0, 0));

        // A rule's decision (the honeypot's) is not a moderator's: nothing learned.
        let mut caught = valid_comment();
        merge(&mut caught, hammy(8));
        caught["homepage"] = json!("I am a bot");
        assert_eq!(app.post_json(&caught).await.status(), StatusCode::ACCEPTED);
        let spam = app.admin_list("status=spam").await;
        assert_eq!(spam["comments"][0]["moderated_by"], "auto:honeypot", "{spam}");
        assert_eq!(examples(&app).await, (0, 0));
        store.close().await;
    })
    .await;
}

#[tokio::test]
async fn erasing_a_person_forgets_their_examples_and_clues() {
    for_each_backend(|backend| async move {
        let app = spawn_app(backend).await;
        let store = Store::connect(app.database_url()).await.unwrap();
        let first = app.submit_with(hammy(1)).await;
        assert_eq!(app.moderate(first, "approve").await.status(), StatusCode::OK);
        let mut again = hammy(1);
        again["body"] = json!(made_of(&HAM_WORDS, 2));
        let second = app.submit_with(again).await;
        let scored = app.admin_comment(second).await;
        assert!(!scored["spam_clues"].as_array().unwrap().is_empty(), "{scored}");
        assert_eq!(app.moderate(second, "approve").await.status(), StatusCode::OK);
        assert!(store.classifier_example(second).await.unwrap().is_some());

        let response = app
            .admin(
                reqwest::Method::DELETE,
                "/api/admin/people?email=reader1%40example.org",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        for id in [first, second] {
            assert!(store.classifier_example(id).await.unwrap().is_none(), "{id}");
            assert_eq!(app.admin_comment(id).await["spam_clues"], json!([]));
        }
        assert_eq!(examples(&app).await, (0, 2), "the counts stay, tied to no one");
        store.close().await;
    })
    .await;
}
