-- name: session_timeouts
-- The timeouts this connection runs with, in milliseconds. Read on each new
-- connection behind a transaction-mode pooler (DB_PREPARED_STATEMENTS=false),
-- where they are the role's defaults on the server, not set by the client.
SELECT name, setting
  FROM pg_settings
 WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout', 'lock_timeout');
