-- Browser sessions of the /admin page: the page trades a token for an
-- HttpOnly cookie. Only a SHA-256 of the session id is kept; the CSRF token
-- must come back in a header on every call.
CREATE TABLE moderator_sessions (
    id_hash    TEXT PRIMARY KEY,
    moderator  TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX moderator_sessions_moderator ON moderator_sessions (moderator);
