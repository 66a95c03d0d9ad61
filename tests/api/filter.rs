//! The learning spam filter. Its store contract: a moderator's decision is
//! kept as the comment's example, a changed decision moves it, counts stay
//! exact under concurrent decisions, deleting a comment keeps what was
//! learned, and every instance's in-process copy follows the stored model.

use std::sync::Arc;
use std::time::Duration;

use marginalia::classifier::{Document, Label, Model, ModelCache, tokenize};
use marginalia::domain::Status;
use marginalia::store::Store;

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
