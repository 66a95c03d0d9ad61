//! The statements about the service's own secrets (`service_secrets`): for
//! now the key that signs one-click links. Written once for both backends
//! (see `store`).

use crate::notify::links::LinkSecret;

use super::{Store, StoreError, now};

/// The row name of the link-signing key.
const LINK_SECRET: &str = "link";

impl Store {
    /// The link-signing key, created on first use.
    ///
    /// Several instances starting together on one PostgreSQL database agree:
    /// each offers a fresh key, only the first insert wins (`ON CONFLICT DO
    /// NOTHING` waits for a competing insert to commit), and every one then
    /// reads the stored key.
    pub async fn link_secret(&self) -> Result<LinkSecret, StoreError> {
        let candidate = LinkSecret::generate().to_stored();
        let now = now();
        on_pool!(self, pool => async {
            sqlx::query(
                "INSERT INTO service_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(LINK_SECRET)
            .bind(&candidate)
            .bind(now)
            .execute(pool)
            .await?;
            let stored: String = sqlx::query_scalar("SELECT value FROM service_secrets WHERE name = $1")
                .bind(LINK_SECRET)
                .fetch_one(pool)
                .await?;
            decode(&stored)
        }
        .await)
    }

    /// The link-signing key as stored now, read without writing: checked on
    /// every use of a link, so a `marginalia secret rotate` run by another
    /// process applies here at once. Created (as [`Store::link_secret`] does)
    /// only if the row is missing.
    pub async fn current_link_secret(&self) -> Result<LinkSecret, StoreError> {
        let stored: Option<String> = on_pool!(self, pool => sqlx::query_scalar(
            "SELECT value FROM service_secrets WHERE name = $1"
        )
        .bind(LINK_SECRET)
        .fetch_optional(pool)
        .await)?;
        match stored {
            Some(stored) => decode(&stored).map_err(StoreError::Other),
            None => self.link_secret().await,
        }
    }

    /// Replaces the link-signing key with a new one and returns it: every
    /// link signed before stops verifying.
    pub async fn rotate_link_secret(&self) -> Result<LinkSecret, StoreError> {
        let secret = LinkSecret::generate();
        let now = now();
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO service_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at"
        )
        .bind(LINK_SECRET)
        .bind(secret.to_stored())
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(secret)
    }
}

/// A stored key that does not decode is corrupt data, not an outage.
fn decode(stored: &str) -> Result<LinkSecret, sqlx::Error> {
    LinkSecret::from_stored(stored).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}
