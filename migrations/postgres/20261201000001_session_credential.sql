-- A session is bound to the exact token that started it (the token's
-- SHA-256, as moderator_tokens keeps it; for MARGINALIA_ADMIN_TOKEN, the hash
-- of the variable's value), so that revoking the token or changing the
-- variable ends its sessions. Sessions from before cannot say which token
-- they came from: they end here, and moderators log in again.
DROP TABLE moderator_sessions;
CREATE TABLE moderator_sessions (
    id_hash         TEXT PRIMARY KEY,
    moderator       TEXT NOT NULL,
    credential_hash TEXT NOT NULL,
    csrf_token      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
-- Revoking a token deletes its sessions.
CREATE INDEX moderator_sessions_credential ON moderator_sessions (credential_hash);
