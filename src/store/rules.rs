//! The statements about the moderation rules (`moderation_rules`, one row).
//! Written once for both backends (see `store`); a change is announced to
//! every instance in its transaction (`announce_rules_change`: `NOTIFY` on
//! PostgreSQL, nothing on SQLite, whose one instance updates its own copy).

use crate::spam::{ModerationMode, ModerationRules};

use super::{Store, StoreError, now};

/// A stored row, before it is checked.
#[derive(sqlx::FromRow)]
struct RulesRow {
    moderation: String,
    hold_links: i64,
    held_words: String,
    blocked_words: String,
}

impl Store {
    /// The stored rules; `None` while no moderator has stored any.
    pub async fn moderation_rules(&self) -> Result<Option<ModerationRules>, StoreError> {
        let row: Option<RulesRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT moderation, hold_links, held_words, blocked_words FROM moderation_rules WHERE id = 1"
        )
        .fetch_optional(pool)
        .await)?;
        row.map(decode).transpose().map_err(StoreError::Other)
    }

    /// Replaces the rules (`by`: the moderator's name) and tells every
    /// instance, in one transaction.
    pub async fn replace_moderation_rules(
        &self,
        rules: &ModerationRules,
        by: &str,
    ) -> Result<(), StoreError> {
        let now = now();
        let held = serde_json::to_string(&rules.held_words).map_err(encode_error)?;
        let blocked = serde_json::to_string(&rules.blocked_words).map_err(encode_error)?;
        in_transaction!(self, |backend, connection| {
            sqlx::query(
                "INSERT INTO moderation_rules \
                 (id, moderation, hold_links, held_words, blocked_words, version, updated_at, updated_by) \
                 VALUES (1, $1, $2, $3, $4, 1, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET moderation = excluded.moderation, \
                 hold_links = excluded.hold_links, held_words = excluded.held_words, \
                 blocked_words = excluded.blocked_words, version = moderation_rules.version + 1, \
                 updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )
            .bind(rules.moderation.as_str())
            .bind(i64::from(rules.hold_links))
            .bind(&held)
            .bind(&blocked)
            .bind(now)
            .bind(by)
            .execute(&mut *connection)
            .await?;
            backend.announce_rules_change(connection).await?;
            Ok(())
        })
    }
}

fn encode_error(error: serde_json::Error) -> StoreError {
    StoreError::Other(sqlx::Error::Encode(Box::new(error)))
}

/// A stored row that does not pass the rules' own checks is corrupt data.
fn decode(row: RulesRow) -> Result<ModerationRules, sqlx::Error> {
    let corrupt = |what: String| sqlx::Error::Decode(what.into());
    let moderation = ModerationMode::parse(&row.moderation)
        .ok_or_else(|| corrupt(format!("unknown moderation mode `{}`", row.moderation)))?;
    let held: Vec<String> =
        serde_json::from_str(&row.held_words).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    let blocked: Vec<String> =
        serde_json::from_str(&row.blocked_words).map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
    ModerationRules::new(moderation, row.hold_links, &held, &blocked)
        .map_err(|errors| corrupt(format!("stored moderation rules are invalid: {errors:?}")))
}
