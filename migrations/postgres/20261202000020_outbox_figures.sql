-- What /metrics counts (Store::outbox_figures): deliveries waiting and
-- deliveries given up, by kind, from these two small indexes alone (the
-- columns they test are in them, so SQLite needs no row of the table). Without
-- them the count read every outbox row, and the columns it looks at come
-- after the payload: about 40 MB read per scrape with 10,000 mails queued.
CREATE INDEX outbox_waiting ON outbox (kind, sent_at, failed_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_failed ON outbox (kind, failed_at) WHERE failed_at IS NOT NULL;
