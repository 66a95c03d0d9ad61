-- The hourly and daily budgets (one confirmation mail a day per address, the
-- moderators' hourly allowance, readers' daily reply mails) count recent
-- deliveries per address whatever its capitals: `Maya@Reader.Example` is
-- the same inbox as `maya@reader.example`, and counting them apart let one
-- form flood an inbox with confirmations. Index what they compare.
DROP INDEX outbox_recent;
CREATE INDEX outbox_recent ON outbox (LOWER(recipient), kind, created_at);
