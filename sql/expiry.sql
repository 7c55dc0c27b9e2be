-- name: purge_expired_batch
-- Claims up to %(batch)s expired pastes, deletes them and returns how many it
-- deleted and the latest expiry among them. SKIP LOCKED lets any number of
-- worker replicas run at once: each claims rows no other transaction holds,
-- so none waits and none deletes a row twice. Served by pastes_expires_at_idx
-- (a partial index on expiring rows).
-- %(after)s is the previous batch's last_expiry (NULL for a drain's first):
-- starting there skips the index entries of rows already deleted, which stay
-- until vacuum. `>=`, so rows tied at the boundary are not skipped.
WITH claimed AS (
    SELECT id, expires_at
      FROM pastes
     WHERE expires_at <= now()
       AND expires_at >= coalesce(%(after)s::timestamptz, '-infinity')
     ORDER BY expires_at
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM pastes AS p
     USING claimed
     WHERE p.id = claimed.id
    RETURNING claimed.expires_at
)
SELECT count(*) AS purged, max(expires_at) AS last_expiry FROM deleted;
