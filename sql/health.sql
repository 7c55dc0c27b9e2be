-- name: ping
-- idempotent
-- Proves the database answers; touches no table.
SELECT 1 AS ok;
