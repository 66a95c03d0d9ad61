-- Comments and their moderation state.
-- AUTOINCREMENT: ids of deleted comments are never reused, so cursors and
-- parent references never point at a different comment later.
CREATE TABLE comments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    uri          TEXT    NOT NULL,
    parent_id    INTEGER REFERENCES comments (id) ON DELETE SET NULL,
    name         TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    website      TEXT,
    body         TEXT    NOT NULL,  -- the Markdown as written, to re-render if the sanitizer changes
    body_html    TEXT    NOT NULL,  -- sanitized, served as is
    status       TEXT    NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'approved', 'rejected', 'spam')),
    created_at   TEXT    NOT NULL,
    moderated_at TEXT,
    moderated_by TEXT,
    ip           TEXT,
    user_agent   TEXT
);

-- The public thread read (uri, approved, id > cursor), the counts per uri and
-- the queue filtered by page.
CREATE INDEX comments_thread ON comments (uri, status, id);
-- The moderation queue by status, oldest or newest first.
CREATE INDEX comments_status ON comments (status, id);
-- ON DELETE SET NULL looks up the replies of a deleted comment.
CREATE INDEX comments_parent ON comments (parent_id);

-- Moderator bearer tokens: only a SHA-256 of each is kept.
CREATE TABLE moderator_tokens (
    name       TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
