-- Akismet (see src/akismet.rs). Off unless MARGINALIA_AKISMET_KEY is set.

-- Akismet's verdict on a comment: NULL (never checked: Akismet was off),
-- 'spam', 'ham', or 'unavailable' (no answer after the retries). Kept so a
-- moderator who overrides it can tell Akismet (submit-ham / submit-spam).
ALTER TABLE comments ADD COLUMN akismet TEXT
    CHECK (akismet IS NULL OR akismet IN ('spam', 'ham', 'unavailable'));

-- One row per comment to check, written in the submission's transaction, so
-- a check is never lost (a crash, Akismet down); a worker claims due rows
-- off the request path. The row stays after the check (checked_at set): it
-- keeps what the comment row lacks and the feedback calls send again (the
-- referrer), and goes with the comment.
CREATE TABLE akismet_checks (
    comment_id    BIGINT PRIMARY KEY REFERENCES comments (id) ON DELETE CASCADE,
    referrer      TEXT,            -- the submission's Referer header
    created_at    TIMESTAMPTZ NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,  -- claims so far
    claimed_until TIMESTAMPTZ,     -- a worker holds it until then
    checked_at    TIMESTAMPTZ          -- NULL: still to check
);
-- The worker's claim and the dispatcher's "is a check still due" probe.
CREATE INDEX akismet_checks_due ON akismet_checks (created_at) WHERE checked_at IS NULL;
