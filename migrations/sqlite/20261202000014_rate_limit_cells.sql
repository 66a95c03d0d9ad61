-- Intentionally empty. On PostgreSQL this number creates `rate_limit_cells`,
-- the submission limit shared by several instances. A SQLite file serves one
-- instance, whose in-process limiter (src/rate_limit.rs) is the whole limit,
-- so there is nothing to store here; the file keeps the two migration
-- histories numbered alike.
SELECT 1;
