-- The learning spam filter's clues on a comment: the tokens that weighed
-- most in its `spam_score` when it arrived, a JSON array of
-- {"token", "probability"} (strongest first); `[]` when it was not scored.
ALTER TABLE comments ADD COLUMN spam_clues TEXT NOT NULL DEFAULT '[]';
