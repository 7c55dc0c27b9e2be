-- name: take_token
-- Takes one token from a client's bucket, first refilling it at
-- %(per_second)s tokens a second up to %(burst)s. Returns the tokens left:
-- negative means the request is refused (and the bucket stays near empty while
-- the client keeps knocking). One statement; the row lock orders a client's
-- concurrent requests. Served by the primary key.
INSERT INTO rate_limits AS r (bucket, client, tokens, updated_at)
VALUES (%(bucket)s, %(client)s, %(burst)s - 1, now())
ON CONFLICT (bucket, client) DO UPDATE
   SET tokens = GREATEST(
           -1,
           LEAST(%(burst)s, r.tokens + extract(epoch FROM now() - r.updated_at) * %(per_second)s) - 1
       ),
       updated_at = now()
RETURNING tokens;

-- name: delete_stale_rate_limits
-- Deletes up to %(batch)s buckets idle for %(idle_seconds)s seconds: by then
-- they have refilled, so dropping them changes nothing. SKIP LOCKED lets
-- worker replicas share the work. Served by rate_limits_updated_at_idx.
DELETE FROM rate_limits
 WHERE (bucket, client) IN (
       SELECT bucket, client
         FROM rate_limits
        WHERE updated_at < now() - make_interval(secs => %(idle_seconds)s)
        LIMIT %(batch)s
          FOR UPDATE SKIP LOCKED
 );
