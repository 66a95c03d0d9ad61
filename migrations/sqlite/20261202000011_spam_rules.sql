-- Spam defence (issue #11): why an automatic decision was made, the
-- learning filter's score (filled by a later step; NULL until then), the
-- duplicate key, and the moderation rules moderators edit on /admin.

-- `reasons`: a JSON array of strings (`["honeypot"]`, `["links:3"]`).
ALTER TABLE comments ADD COLUMN reasons TEXT NOT NULL DEFAULT '[]';
-- The spam filter's probability; NULL: not scored.
ALTER TABLE comments ADD COLUMN spam_score REAL;
-- SHA-256 (hex) of the lower-cased email, the uri and the trimmed body of a
-- submission: a second identical submission conflicts on the unique index
-- (in the same write batch too) and is refused as a duplicate. NULL for
-- comments stored before this migration and for imported ones; NULLs never
-- collide.
ALTER TABLE comments ADD COLUMN dedup_key TEXT;
CREATE UNIQUE INDEX comments_dedup ON comments (dedup_key);
-- "The author has an approved comment" (MARGINALIA_MODERATION=known).
CREATE INDEX comments_author ON comments (lower(email), status);
-- The moderation list sorted by score (`sort=score`).
CREATE INDEX comments_score ON comments (status, spam_score, id);

-- The moderation rules: one row (id = 1). `version` grows with each change,
-- so instances can tell a stale copy. Word lists are JSON arrays of strings.
-- No row: the defaults (MARGINALIA_MODERATION, 2 links, no words).
CREATE TABLE moderation_rules (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    moderation    TEXT    NOT NULL CHECK (moderation IN ('all', 'known')),
    hold_links    INTEGER NOT NULL,
    held_words    TEXT    NOT NULL DEFAULT '[]',
    blocked_words TEXT    NOT NULL DEFAULT '[]',
    version       INTEGER NOT NULL,
    updated_at    TEXT    NOT NULL,
    updated_by    TEXT    NOT NULL
);
