-- name: list_reports
-- idempotent
-- Reported live pastes, most reported first: counts by reason and the
-- latest details. Reports of pastes that are gone are left out (the worker
-- deletes them). Served by reports_paste_id_idx and the pastes primary key.
WITH per_reason AS (
    SELECT paste_id, reason, count(*) AS reports, max(reported_at) AS last_reported
      FROM reports
     GROUP BY paste_id, reason
)
SELECT p.id, p.title, p.size, p.created_at,
       sum(r.reports)::int AS reports,
       max(r.last_reported) AS last_reported,
       jsonb_object_agg(r.reason, r.reports) AS reasons,
       (SELECT coalesce(jsonb_agg(d.detail), '[]'::jsonb)
          FROM (SELECT detail FROM reports
                 WHERE paste_id = p.id AND detail IS NOT NULL
                 ORDER BY reported_at DESC
                 LIMIT 3) AS d) AS details
  FROM per_reason AS r
  JOIN live_pastes AS p ON p.id = r.paste_id
 GROUP BY p.id, p.title, p.size, p.created_at
 ORDER BY reports DESC, last_reported DESC
 LIMIT %(limit)s;

-- name: remove_paste
-- Removes a live paste for good in one statement: deletes it, keeps a
-- tombstone with the reason (reads answer 451), drops its reports and, when
-- %(block)s, puts its content's hash on the blocklist. No row when there is
-- no live paste. Served by the primary keys and reports_paste_id_idx.
WITH removed AS (
    DELETE FROM live_pastes WHERE id = %(id)s
    RETURNING id, content_sha256(content) AS sha256
), tombstone AS (
    INSERT INTO removed_pastes (id, reason)
    SELECT id, %(reason)s FROM removed
    ON CONFLICT (id) DO UPDATE SET reason = excluded.reason, removed_at = now()
), blocked AS (
    INSERT INTO blocked_content (sha256, reason)
    SELECT sha256, %(reason)s FROM removed WHERE %(block)s
    ON CONFLICT (sha256) DO NOTHING
), dropped_reports AS (
    DELETE FROM reports WHERE paste_id IN (SELECT id FROM removed)
)
SELECT id, encode(sha256, 'hex') AS sha256 FROM removed;

-- name: block_content
-- Puts a content hash on the blocklist (again is a no-op). Served by its
-- primary key.
INSERT INTO blocked_content (sha256, reason)
VALUES (decode(%(sha256)s, 'hex'), %(reason)s)
ON CONFLICT (sha256) DO NOTHING;

-- name: unblock_content
-- Takes a content hash off the blocklist; no row when it was not on it.
DELETE FROM blocked_content WHERE sha256 = decode(%(sha256)s, 'hex')
RETURNING encode(sha256, 'hex') AS sha256;

-- name: list_blocked
-- idempotent
-- The blocklist, newest first.
SELECT encode(sha256, 'hex') AS sha256, reason, blocked_at
  FROM blocked_content
 ORDER BY blocked_at DESC;

-- name: count_removed_pastes
-- idempotent
-- Pastes removed by an operator, ever (tombstones are kept): the "operator"
-- count of pastebin_pastes_deleted_total.
SELECT count(*) AS removed FROM removed_pastes;

-- name: delete_orphan_reports
-- Deletes up to %(batch)s reports of pastes that are gone (expired, burned,
-- deleted). Served by reports_paste_id_idx and the pastes primary key.
DELETE FROM reports
 WHERE id IN (
       SELECT r.id FROM reports AS r
        WHERE NOT EXISTS (SELECT 1 FROM live_pastes AS p WHERE p.id = r.paste_id)
        LIMIT %(batch)s
 );
