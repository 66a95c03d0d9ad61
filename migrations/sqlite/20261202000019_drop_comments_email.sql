-- comments_author (lower(email), status) already serves every lookup by
-- address; comments_email (LOWER(email)) repeated its first column and cost
-- every new comment one more index page written.
DROP INDEX IF EXISTS comments_email;
