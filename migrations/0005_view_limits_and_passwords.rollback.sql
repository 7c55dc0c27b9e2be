-- Back to burn_after_read; pastes with a view limit above one or a password
-- become plain pastes.
DROP FUNCTION paste_take_view(text);
DROP VIEW live_pastes;
DROP INDEX pastes_public_listing_idx;
ALTER TABLE pastes DROP CONSTRAINT pastes_views_check;
ALTER TABLE pastes ADD COLUMN burn_after_read boolean NOT NULL DEFAULT false;
UPDATE pastes SET burn_after_read = true WHERE max_views = 1;
ALTER TABLE pastes DROP COLUMN max_views, DROP COLUMN views_left, DROP COLUMN password_hash;
CREATE INDEX pastes_public_listing_idx
    ON pastes (created_at, id)
    WHERE visibility = 'public' AND NOT burn_after_read;
