-- Comments held for a moderator's digest are kept as one row per dispatcher
-- claim (a JSON array of comment ids) instead of one row per comment: in a
-- spam wave the dispatcher wrote a row, and two index entries, for every
-- submission, competing with the submissions themselves for the database.
CREATE TABLE digest_batches (
    id          BIGSERIAL PRIMARY KEY,
    recipient   TEXT NOT NULL,
    comment_ids TEXT NOT NULL,  -- JSON array of comment ids, in the order they were held
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX digest_batches_recipient ON digest_batches (recipient, id);

-- Entries waiting when the upgrade runs keep their place in the next digest.
INSERT INTO digest_batches (recipient, comment_ids, created_at)
SELECT recipient, '[' || string_agg(comment_id::text, ',' ORDER BY id) || ']', MIN(created_at)
FROM digest_entries
GROUP BY recipient;

DROP TABLE digest_entries;
