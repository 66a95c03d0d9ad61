-- Notifications, durably (see src/outbox.rs). Nothing is mailed or POSTed
-- from a request: the request's transaction writes an event, a dispatcher
-- turns events into deliveries (one per mail or webhook call), and a sender
-- delivers those with retries. Every step is a committed row, so a crash
-- loses nothing.

-- What happened: written in the same transaction as the change it reports.
CREATE TABLE notification_events (
    id            BIGSERIAL PRIMARY KEY,
    event         TEXT    NOT NULL,  -- comment.pending … comment.deleted
    submitted     BOOLEAN NOT NULL,  -- true for the event of a new submission
    wants_replies BOOLEAN NOT NULL,  -- its reader asked for reply mail
    comment_id    BIGINT NOT NULL,  -- no foreign key: a deletion's event outlives the comment
    deleted       TEXT,              -- comment.deleted only: the comment as JSON (it is gone);
                                     -- other events read the comment when they are handled
    created_at    TIMESTAMPTZ NOT NULL,
    claim         TEXT,              -- the dispatcher working on it …
    claimed_until TIMESTAMPTZ           -- … until then (after, another may take it)
);
CREATE INDEX notification_events_claimed ON notification_events (claimed_until, id);

-- What must be delivered: one mail to one address, or one POST to one URL.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    kind            TEXT    NOT NULL,  -- moderator_mail, digest, confirmation, reply, test_mail, webhook
    recipient       TEXT    NOT NULL,  -- an address, or a webhook URL
    payload         BYTEA NOT NULL,  -- the formatted message, or the webhook body (signed when sent)
    created_at      TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,  -- also the lease of a sender working on it
    attempts        INTEGER NOT NULL DEFAULT 0,
    sent_at         TIMESTAMPTZ,
    failed_at       TIMESTAMPTZ,           -- given up after the last retry
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
-- The hourly and daily budgets count recent deliveries per recipient.
CREATE INDEX outbox_recent ON outbox (recipient, kind, created_at);

-- Comments beyond a moderator's hourly allowance of single mails, waiting
-- for that moderator's next digest.
CREATE TABLE digest_entries (
    id         BIGSERIAL PRIMARY KEY,
    recipient  TEXT NOT NULL,
    comment_id BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX digest_entries_recipient ON digest_entries (recipient, id);

-- Readers who asked for mail when a reply to their comment is published;
-- one per comment, so the comment's id names it in links.
CREATE TABLE subscriptions (
    comment_id   BIGINT PRIMARY KEY REFERENCES comments (id) ON DELETE CASCADE,
    uri          TEXT NOT NULL,
    email        TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    confirmed_at TIMESTAMPTZ,  -- double opt-in: nothing but the confirmation is mailed before
    ended_at     TIMESTAMPTZ   -- unsubscribed
);
CREATE INDEX subscriptions_email ON subscriptions (email);

-- One-click links that have been used: a link acts once.
CREATE TABLE used_links (
    nonce   TEXT PRIMARY KEY,
    used_at TIMESTAMPTZ NOT NULL
);
