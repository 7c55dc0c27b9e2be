-- name: purge_expired_batch
-- Claims up to %(batch)s expired pastes, deletes them in one statement and
-- returns how many it deleted. SKIP LOCKED lets any number of worker replicas
-- run at once: each claims rows no other transaction holds, so none waits and
-- none deletes a row twice. Served by pastes_expires_at_idx (a partial index
-- on expiring rows). A count, not the ids: turning 1,000 ids a batch into
-- Python rows took a fifth of a core while a backlog drains, beside the web
-- workers on the same machine.
WITH claimed AS (
    SELECT id
      FROM pastes
     WHERE expires_at <= now()
     ORDER BY expires_at
     LIMIT %(batch)s
       FOR UPDATE SKIP LOCKED
), deleted AS (
    DELETE FROM pastes AS p
     USING claimed
     WHERE p.id = claimed.id
    RETURNING 1
)
SELECT count(*) AS purged FROM deleted;
