-- name: purge_expired_batch
-- Claims up to %(batch)s expired pastes and deletes them in one statement.
-- SKIP LOCKED lets any number of worker replicas run at once: each claims rows
-- no other transaction holds, so none waits and none deletes a row twice.
-- Served by pastes_expires_at_idx (a partial index on expiring rows).
WITH claimed AS (
    SELECT id
      FROM pastes
     WHERE expires_at <= now()
     ORDER BY expires_at
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
)
DELETE FROM pastes AS p
 USING claimed
 WHERE p.id = claimed.id
RETURNING p.id;
