-- name: purge_expired_batch
-- Claims up to %(batch)s expired pastes, deletes them in one statement and
-- returns how many it deleted and the latest expiry among them. SKIP LOCKED
-- lets any number of worker replicas run at once: each claims rows no other
-- transaction holds, so none waits and none deletes a row twice. Served by
-- pastes_expires_at_idx (a partial index on expiring rows).
--
-- %(after)s is the previous batch's last_expiry (NULL for a drain's first):
-- the scan starts there, not at the front of the index, where the entries of
-- every row deleted so far stay until vacuum. From the front, each batch of a
-- 1,000,000-row drain stepped over all of them: the last batches took 1.7
-- times as long as the first. `>=`, so rows tied at the boundary are not
-- skipped; rows another replica held behind it are left to the next drain.
-- %(before)s (NULL: none) ends a replica's stretch of the backlog where the
-- next replica's starts (claim_purge_lane).
--
-- A count, not the ids: turning 1,000 ids a batch into Python rows took a
-- fifth of a core while a backlog drains, beside the web workers.
WITH claimed AS (
    SELECT id, expires_at
      FROM pastes
     WHERE expires_at <= now()
       AND expires_at >= coalesce(%(after)s::timestamptz, '-infinity')
       AND expires_at < coalesce(%(before)s::timestamptz, 'infinity')
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

-- name: claim_purge_lane
-- Which stretch of the backlog this replica drains. It takes the lowest free
-- lane of %(lanes)s (a session advisory lock in %(namespace)s, held until
-- release_purge_lanes), counts the lanes held now, and reads the expired
-- backlog's bounds; the worker splits the backlog among the lanes held
-- (domain.purge_stretch), by expiry between the oldest and the newest
-- expired row. Replicas that all start at the front leapfrog: every batch
-- steps over the rows the others hold or have just deleted, and on 2 cores
-- four replicas purged at three quarters of one's rate; split, two and four
-- replicas purge at 1.5 times one's rate and more.
-- Lanes only divide the work; SKIP LOCKED keeps replicas correct. A stretch
-- whose lane nobody holds (a hole left by a replica that finished early)
-- waits for the next drain; a lone replica drains everything. lane is NULL
-- when all lanes are taken. Served by pastes_expires_at_idx.
WITH lane AS (
    SELECT n
      FROM generate_series(0, %(lanes)s - 1) AS n
     WHERE pg_try_advisory_lock(%(namespace)s, n)
     LIMIT 1
), mine AS (
    SELECT (SELECT n FROM lane) AS lane
)
SELECT mine.lane,
       (SELECT greatest(max(objid::text::int) + 1, mine.lane + 1)
          FROM pg_locks
         WHERE locktype = 'advisory'
           AND classid = %(namespace)s::oid
           AND objsubid = 2
           AND granted) AS lanes_held,
       (SELECT min(expires_at) FROM pastes WHERE expires_at <= now()) AS first_expiry,
       (SELECT max(expires_at) FROM pastes WHERE expires_at <= now()) AS last_expiry
  FROM mine;

-- name: release_purge_lanes
-- Gives back this session's lane (and one left over by a drain that failed).
SELECT pg_advisory_unlock_all();
