-- Comments held for a moderator's digest are kept as one row per dispatcher
-- claim (a JSON array of comment ids) instead of one row per comment: in a
-- spam wave the dispatcher wrote a row, and two index entries, for every
-- submission, competing with the submissions themselves for the one writer.
CREATE TABLE digest_batches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient   TEXT NOT NULL,
    comment_ids TEXT NOT NULL,  -- JSON array of comment ids, in the order they were held
    created_at  TEXT NOT NULL
);
CREATE INDEX digest_batches_recipient ON digest_batches (recipient, id);

-- Entries waiting when the upgrade runs keep their place in the next digest.
INSERT INTO digest_batches (recipient, comment_ids, created_at)
SELECT recipient, '[' || group_concat(comment_id, ',') || ']', MIN(created_at)
FROM (SELECT recipient, comment_id, created_at FROM digest_entries ORDER BY id)
GROUP BY recipient;

DROP TABLE digest_entries;
