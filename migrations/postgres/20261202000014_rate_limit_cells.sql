-- The submission limit every instance shares (see src/store/rate_limit.rs):
-- one GCRA cell per client key (an IPv4 address, or an IPv6 /64 as text),
-- holding its theoretical arrival time. A row whose `tat` has passed means
-- the same as no row (a full allowance), so the instances delete those
-- periodically; the table holds only clients seen within the last
-- burst x interval.
--
-- UNLOGGED: this is short-lived state, written on every submission. Skipping
-- the WAL makes those writes cheaper; the price is that a crash or a
-- fail-over to a standby empties the table, which gives every client one
-- fresh burst. fillfactor 70 leaves room in each page so that updating a
-- cell is a HOT update (no new index entry).
CREATE UNLOGGED TABLE rate_limit_cells (
    key TEXT        PRIMARY KEY,
    tat TIMESTAMPTZ NOT NULL
) WITH (fillfactor = 70);
