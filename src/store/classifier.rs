//! The statements of the learning spam filter (`classifier_tokens`,
//! `classifier_state`, `classifier_examples`): recording a moderator's
//! decision as an example, incrementally and in one transaction, and loading
//! the model into the in-process [`ModelCache`] when its stored version has
//! changed. Written once for both backends (see `store`).
//!
//! Every change takes the `classifier_state` row first (a row lock on
//! PostgreSQL, the write lock on SQLite), so decisions are applied one after
//! the other and concurrent upserts of the same tokens cannot deadlock;
//! moderation is far too rare for that to cost anything.

use std::sync::Arc;
use std::time::Instant;

use super::{Store, StoreError, now};
use crate::classifier::{ExampleChange, Label, Model, ModelCache, TokenCounts};
use crate::domain::CommentId;

/// Rows per token upsert: three parameters each, far below both backends'
/// limits on parameters per statement.
pub(super) const TOKENS_PER_STATEMENT: usize = 1000;

/// Records `example` (a label and the tokens trained, or `None` to forget)
/// as the example of comment `$comment_id`, inside the transaction of
/// `$connection`: untrains the comment's previous example, if any, trains
/// the new one, and bumps the model's version. Evaluates to
/// `Option<Learned>`: `None` when the comment already had exactly that
/// example (nothing written, the version unchanged). A macro, like
/// `set_status_in_transaction!`, so that a moderation can learn in its own
/// transaction: it expands once per backend's connection type.
macro_rules! learn_in_transaction {
    ($connection:ident, $comment_id:expr, $example:expr, $now:expr) => {{
        let (comment_id, example, now): (
            $crate::domain::CommentId,
            Option<($crate::classifier::Label, &[String])>,
            ::time::OffsetDateTime,
        ) = ($comment_id, $example, $now);
        // Serializes every change to the model (see the module header).
        sqlx::query("UPDATE classifier_state SET version = version WHERE id = 1")
            .execute(&mut *$connection)
            .await?;
        let stored: Option<(String, String)> =
            sqlx::query_as("SELECT label, tokens FROM classifier_examples WHERE comment_id = $1")
                .bind(comment_id)
                .fetch_optional(&mut *$connection)
                .await?;
        let old = stored
            .map(|(label, tokens)| $crate::store::classifier::decode_example(&label, &tokens))
            .transpose()?;
        let change = $crate::classifier::ExampleChange::between(
            old.as_ref().map(|(label, tokens)| (*label, tokens.as_slice())),
            example,
        );
        if change.is_empty() {
            None
        } else {
            match example {
                Some((label, tokens)) => {
                    sqlx::query(
                        "INSERT INTO classifier_examples (comment_id, label, tokens, trained_at) \
                         VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (comment_id) DO UPDATE SET label = excluded.label, \
                         tokens = excluded.tokens, trained_at = excluded.trained_at",
                    )
                    .bind(comment_id)
                    .bind(label.as_str())
                    .bind($crate::store::classifier::encode_tokens(tokens))
                    .bind(now)
                    .execute(&mut *$connection)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM classifier_examples WHERE comment_id = $1")
                        .bind(comment_id)
                        .execute(&mut *$connection)
                        .await?;
                }
            }
            let deltas: Vec<(&String, &(i64, i64))> = change.tokens.iter().collect();
            for chunk in deltas.chunks($crate::store::classifier::TOKENS_PER_STATEMENT) {
                // Counts never go below zero, whatever was done to the table.
                let mut sql = sqlx::QueryBuilder::new("INSERT INTO classifier_tokens (token, spam, ham) ");
                sql.push_values(chunk, |mut row, (token, (spam, ham))| {
                    row.push_bind(token.as_str()).push_bind(*spam).push_bind(*ham);
                });
                sql.push(
                    " ON CONFLICT (token) DO UPDATE SET \
                     spam = CASE WHEN classifier_tokens.spam + excluded.spam < 0 THEN 0 \
                     ELSE classifier_tokens.spam + excluded.spam END, \
                     ham = CASE WHEN classifier_tokens.ham + excluded.ham < 0 THEN 0 \
                     ELSE classifier_tokens.ham + excluded.ham END",
                );
                sql.build().execute(&mut *$connection).await?;
                // Tokens no example holds any more are not kept.
                let untrained: Vec<&str> = chunk
                    .iter()
                    .filter(|(_, (spam, ham))| *spam < 0 || *ham < 0)
                    .map(|(token, _)| token.as_str())
                    .collect();
                if !untrained.is_empty() {
                    let mut sql = sqlx::QueryBuilder::new(
                        "DELETE FROM classifier_tokens WHERE spam <= 0 AND ham <= 0 AND token IN (",
                    );
                    let mut list = sql.separated(", ");
                    for token in untrained {
                        list.push_bind(token);
                    }
                    sql.push(")");
                    sql.build().execute(&mut *$connection).await?;
                }
            }
            let version: i64 = sqlx::query_scalar(
                "UPDATE classifier_state SET \
                 spam_docs = CASE WHEN spam_docs + $1 < 0 THEN 0 ELSE spam_docs + $1 END, \
                 ham_docs = CASE WHEN ham_docs + $2 < 0 THEN 0 ELSE ham_docs + $2 END, \
                 version = version + 1 \
                 WHERE id = 1 RETURNING version",
            )
            .bind(change.spam_examples)
            .bind(change.ham_examples)
            .fetch_one(&mut *$connection)
            .await?;
            Some($crate::store::classifier::Learned { version, change })
        }
    }};
}

/// What recording an example changed: the model's new version and the
/// change, for [`ModelCache::apply`].
#[derive(Debug, Clone)]
pub struct Learned {
    pub version: i64,
    pub change: ExampleChange,
}

/// A comment's example as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredExample {
    pub label: Label,
    pub tokens: Vec<String>,
}

/// The stored form of an example's tokens: a JSON array.
pub(super) fn encode_tokens(tokens: &[String]) -> String {
    serde_json::Value::from(tokens).to_string()
}

/// Reads a stored example; one that does not decode is corrupt data.
pub(super) fn decode_example(label: &str, tokens: &str) -> Result<(Label, Vec<String>), sqlx::Error> {
    let label = Label::parse(label)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown classifier label {label:?}").into()))?;
    let tokens: Vec<String> =
        serde_json::from_str(tokens).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    Ok((label, tokens))
}

/// A stored count as the model holds it (a negative one was clamped on
/// write; it cannot be read back as such).
fn count(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

impl Store {
    /// Records a moderator's decision on comment `comment_id` as the
    /// filter's example (`None` forgets it), in one transaction; a changed
    /// decision moves the example. `None` when nothing changed.
    pub async fn learn(
        &self,
        comment_id: CommentId,
        example: Option<(Label, &[String])>,
    ) -> Result<Option<Learned>, StoreError> {
        let now = now();
        in_transaction!(self, sqlite_begin: "BEGIN IMMEDIATE", |_backend, connection| {
            Ok(learn_in_transaction!(connection, comment_id, example, now))
        })
    }

    /// The example comment `comment_id` contributed, if any.
    pub async fn classifier_example(
        &self,
        comment_id: CommentId,
    ) -> Result<Option<StoredExample>, StoreError> {
        let stored: Option<(String, String)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT label, tokens FROM classifier_examples WHERE comment_id = $1"
        )
        .bind(comment_id)
        .fetch_optional(pool)
        .await)?;
        let Some((label, tokens)) = stored else {
            return Ok(None);
        };
        let (label, tokens) = decode_example(&label, &tokens).map_err(StoreError::Other)?;
        Ok(Some(StoredExample { label, tokens }))
    }

    /// The stored model and its version. The version is read first: a
    /// change committed between the reads is then in the counts but not in
    /// the version, and the next check reloads (never the other way round,
    /// which would keep a stale model).
    pub async fn load_classifier(&self) -> Result<(i64, Model), StoreError> {
        let (spam_docs, ham_docs, version): (i64, i64, i64) = on_pool!(self, pool => sqlx::query_as(
            "SELECT spam_docs, ham_docs, version FROM classifier_state WHERE id = 1"
        )
        .fetch_one(pool)
        .await)?;
        let rows: Vec<(String, i64, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT token, spam, ham FROM classifier_tokens WHERE spam > 0 OR ham > 0"
        )
        .fetch_all(pool)
        .await)?;
        let tokens = rows.into_iter().map(|(token, spam, ham)| {
            (
                token,
                TokenCounts {
                    spam: count(spam),
                    ham: count(ham),
                },
            )
        });
        Ok((
            version,
            Model::from_counts(tokens, count(spam_docs), count(ham_docs)),
        ))
    }

    /// The current model, from `cache` while it is fresh; otherwise the
    /// stored version is read (one indexed row) and the model reloaded
    /// only when it differs.
    pub async fn classifier_model(&self, cache: &ModelCache) -> Result<Arc<Model>, StoreError> {
        let now = Instant::now();
        if let Some(model) = cache.fresh(now) {
            return Ok(model);
        }
        let version: i64 = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT version FROM classifier_state WHERE id = 1"
        )
        .fetch_one(pool)
        .await)?;
        if let Some(model) = cache.confirm(version, now) {
            return Ok(model);
        }
        let (version, model) = self.load_classifier().await?;
        Ok(cache.replace(version, model, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tokens_round_trip_and_bad_ones_are_errors() {
        let tokens = vec!["cheap".to_owned(), "url:a \"b\".com".to_owned()];
        let stored = encode_tokens(&tokens);
        assert_eq!(decode_example("spam", &stored).unwrap(), (Label::Spam, tokens));
        assert!(decode_example("eggs", &stored).is_err());
        assert!(decode_example("ham", "not json").is_err());
        assert_eq!(count(-3), 0);
    }
}
