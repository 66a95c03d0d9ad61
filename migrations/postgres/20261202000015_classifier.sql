-- The learning spam filter (src/classifier.rs): what it learned from the
-- moderators' decisions, shared by every instance.

-- Per token, how many spam and ham examples contained it. Rows that fall to
-- zero stay until the token is seen again; the model skips them.
CREATE TABLE classifier_tokens (
    token TEXT    PRIMARY KEY,
    spam  BIGINT  NOT NULL DEFAULT 0,
    ham   BIGINT  NOT NULL DEFAULT 0
);

-- One row: the examples per kind, and a version bumped with every change so
-- that instances know when to reload their copy of the model.
CREATE TABLE classifier_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    spam_docs BIGINT  NOT NULL DEFAULT 0,
    ham_docs  BIGINT  NOT NULL DEFAULT 0,
    version   BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO classifier_state (id, spam_docs, ham_docs, version) VALUES (1, 0, 0, 0);

-- Which example each moderated comment contributed, with the exact tokens
-- trained (a JSON array), so that a changed decision untrains exactly those
-- even if the tokenizer changed since. Deleting the comment deletes this row
-- but not its counts: emptying the spam folder must not make the filter
-- forget what spam looks like.
CREATE TABLE classifier_examples (
    comment_id BIGINT  PRIMARY KEY REFERENCES comments (id) ON DELETE CASCADE,
    label      TEXT    NOT NULL CHECK (label IN ('spam', 'ham')),
    tokens     TEXT    NOT NULL,
    trained_at TIMESTAMPTZ NOT NULL
);
