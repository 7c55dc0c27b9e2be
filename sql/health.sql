-- name: ping
-- Proves the database answers; touches no table.
SELECT 1 AS ok;
