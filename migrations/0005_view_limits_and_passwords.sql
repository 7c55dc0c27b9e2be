-- View limits and passwords. burn_after_read becomes max_views = 1, one rule
-- for both, so its column goes. live_pastes is the one place that says which
-- rows are live; the reads go through it. The listing's index skips every
-- paste the listing hides (a view limit or a password).
-- depends: 0004_rate_limit_hot_updates

ALTER TABLE pastes
    ADD COLUMN max_views     integer,
    ADD COLUMN views_left    integer,
    ADD COLUMN password_hash text;

UPDATE pastes SET max_views = 1, views_left = 1 WHERE burn_after_read;

DROP INDEX pastes_public_listing_idx;
ALTER TABLE pastes DROP COLUMN burn_after_read;

ALTER TABLE pastes ADD CONSTRAINT pastes_views_check CHECK (
    (max_views IS NULL AND views_left IS NULL)
    OR (max_views BETWEEN 1 AND 1000000 AND views_left BETWEEN 0 AND max_views)
);

-- Serves list_public: a keyset scan, newest first, over listable pastes only.
CREATE INDEX pastes_public_listing_idx
    ON pastes (created_at, id)
 WHERE visibility = 'public' AND max_views IS NULL AND password_hash IS NULL;

-- Live: not expired, whether or not the worker has purged it yet.
CREATE VIEW live_pastes AS
SELECT id, content, title, language, visibility, max_views, views_left, password_hash,
       size, created_at, expires_at, delete_token_hash
  FROM pastes
 WHERE expires_at IS NULL OR expires_at > now();

-- Takes one view of a live paste with a view limit and returns the paste with
-- views_left after this read; the read that takes the last view deletes it.
-- Returns no row when no view is left. Readers queue on the row lock and each
-- re-checks views_left on the version the previous one committed, so exactly
-- max_views reads succeed however many run at once. (One statement with a
-- DELETE and an UPDATE in CTEs could not: both would judge the row by the
-- snapshot taken before the wait.)
CREATE FUNCTION paste_take_view(p_id text) RETURNS SETOF live_pastes
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    taken live_pastes;
BEGIN
    UPDATE live_pastes
       SET views_left = views_left - 1
     WHERE id = p_id AND views_left >= 1
    RETURNING * INTO taken;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF taken.views_left = 0 THEN
        DELETE FROM pastes WHERE id = p_id;
    END IF;
    RETURN NEXT taken;
END
$$;
