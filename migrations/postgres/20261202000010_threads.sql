-- A moderator's (or an import's) decision about a thread: closed to new
-- comments, or explicitly (re)opened. No row: nobody decided, and the thread
-- is open unless MARGINALIA_CLOSE_AFTER_DAYS have passed since its first
-- comment. A thread may be closed before it has any comment (a blog closes
-- a post first).
CREATE TABLE threads (
    uri        TEXT        PRIMARY KEY,
    closed     BOOLEAN     NOT NULL,
    decided_at TIMESTAMPTZ NOT NULL,  -- when it was last closed or opened
    decided_by TEXT        NOT NULL   -- the token's name, or `import:<format>`
);

-- The first comment of a thread (MARGINALIA_CLOSE_AFTER_DAYS counts from it)
-- in one index step, whatever the thread's size.
CREATE INDEX comments_first ON comments (uri, created_at);
