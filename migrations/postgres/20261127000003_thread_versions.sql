-- A version per thread, bumped in the same transaction as every change to
-- what the thread shows publicly; the same transaction notifies the other
-- instances (channel `marginalia_threads`, payload: the uri), which drop
-- their cached copy of that thread.
CREATE TABLE thread_versions (
    uri     TEXT   PRIMARY KEY,
    version BIGINT NOT NULL
);
