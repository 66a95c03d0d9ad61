-- Readers' data rights and retention (src/people.rs, src/retention.rs).
-- A reader's comments and subscriptions are found by address whatever its
-- capitals (`Maya@Reader.Example` is `maya@reader.example`): index what the
-- look-up compares.
CREATE INDEX comments_email ON comments (LOWER(email));
CREATE INDEX subscriptions_email_lower ON subscriptions (LOWER(email));
-- The retention job clears IP and user agent of old comments: only rows
-- that still hold one are indexed, so each hourly run reads just those.
CREATE INDEX comments_ip_kept ON comments (created_at) WHERE ip IS NOT NULL OR user_agent IS NOT NULL;
