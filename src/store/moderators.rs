//! The statements about moderators: their stored tokens (only hashes) and the
//! browser sessions of the moderation page, each bound to the hash of the
//! token that started it. Written once for both backends (see `store`).

use time::OffsetDateTime;

use super::{SessionRecord, Store, StoreError, TokenInsertError, TokenRecord, now};

impl Store {
    /// Stores a token's hash under a name; the name must be new.
    pub async fn insert_token(&self, name: &str, token_hash: &str) -> Result<(), TokenInsertError> {
        let now = now();
        let inserted = on_pool!(self, pool => sqlx::query(
            "INSERT INTO moderator_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)"
        )
        .bind(name)
        .bind(token_hash)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()));
        match inserted {
            Ok(_) => Ok(()),
            Err(StoreError::Other(sqlx::Error::Database(db))) if db.is_unique_violation() => {
                Err(TokenInsertError::NameTaken(name.to_owned()))
            }
            Err(error) => Err(TokenInsertError::Store(error)),
        }
    }

    /// Every stored token, by name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT name, token_hash, created_at FROM moderator_tokens ORDER BY name"
        )
        .fetch_all(pool)
        .await)
    }

    /// False when no token has that name. The token's browser sessions end with it.
    pub async fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        in_transaction!(self, |connection| {
            let revoked: Option<String> =
                sqlx::query_scalar("DELETE FROM moderator_tokens WHERE name = $1 RETURNING token_hash")
                    .bind(name)
                    .fetch_optional(&mut *connection)
                    .await?;
            if let Some(token_hash) = &revoked {
                sqlx::query("DELETE FROM moderator_sessions WHERE credential_hash = $1")
                    .bind(token_hash)
                    .execute(&mut *connection)
                    .await?;
            }
            Ok(revoked.is_some())
        })
    }

    /// Stores a session started with the token whose hash is
    /// `credential_hash`, and forgets expired ones.
    pub async fn insert_session(
        &self,
        id_hash: &str,
        moderator: &str,
        credential_hash: &str,
        csrf_token: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = now();
        in_transaction!(self, |connection| {
            sqlx::query("DELETE FROM moderator_sessions WHERE expires_at < $1")
                .bind(now)
                .execute(&mut *connection)
                .await?;
            sqlx::query(
                "INSERT INTO moderator_sessions \
                 (id_hash, moderator, credential_hash, csrf_token, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id_hash)
            .bind(moderator)
            .bind(credential_hash)
            .bind(csrf_token)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *connection)
            .await?;
            Ok(())
        })
    }

    /// The session with this id hash, and whether its token is still stored.
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        on_pool!(self, pool => sqlx::query_as(
            "SELECT s.moderator, s.csrf_token, s.expires_at, s.credential_hash, \
                    EXISTS (SELECT 1 FROM moderator_tokens t WHERE t.token_hash = s.credential_hash) \
                        AS credential_stored \
             FROM moderator_sessions s WHERE s.id_hash = $1"
        )
        .bind(id_hash)
        .fetch_optional(pool)
        .await)
    }

    /// Ends a session; an unknown one is no error.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("DELETE FROM moderator_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(pool)
            .await
            .map(|_| ()))
    }
}
