-- name: take_token
-- Takes one token from a client's bucket (refilled at %(per_second)s tokens a
-- second up to %(burst)s) with rate_limit_take (migrations 0003, 0004). Returns the
-- tokens left: negative means the request is refused. Served by the primary key.
SELECT rate_limit_take(%(bucket)s, %(client)s, %(burst)s, %(per_second)s) AS tokens;

-- name: delete_stale_rate_limits
-- Deletes up to %(batch)s buckets idle for %(idle_seconds)s seconds: by then
-- they have refilled, so dropping them changes nothing. SKIP LOCKED lets
-- worker replicas share the work. A sequential scan: the table has a row per
-- active client, and no index on updated_at keeps every take a HOT update
-- (migration 0004).
DELETE FROM rate_limits
 WHERE (bucket, client) IN (
       SELECT bucket, client
         FROM rate_limits
        WHERE updated_at < now() - make_interval(secs => %(idle_seconds)s)
        LIMIT %(batch)s
          FOR UPDATE SKIP LOCKED
 );
