-- The pastes table and the indexes its queries rely on.
-- depends:

CREATE TABLE pastes (
    id                text        PRIMARY KEY,
    content           text        NOT NULL,
    title             text,
    language          text,
    visibility        text        NOT NULL DEFAULT 'unlisted',
    burn_after_read   boolean     NOT NULL DEFAULT false,
    size              integer     NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz,
    delete_token_hash bytea       NOT NULL,
    CONSTRAINT pastes_visibility_check CHECK (visibility IN ('unlisted', 'public')),
    CONSTRAINT pastes_size_check CHECK (size >= 1),
    CONSTRAINT pastes_expiry_check CHECK (expires_at IS NULL OR expires_at > created_at)
);

-- Serves list_public_first / list_public_after: a keyset scan, newest first,
-- over public pastes only (burn-after-read pastes are never listed).
CREATE INDEX pastes_public_listing_idx
    ON pastes (created_at, id)
    WHERE visibility = 'public' AND NOT burn_after_read;

-- Serves the expiry worker's claim: only rows that can expire are indexed,
-- so a tick with nothing to purge is one probe of a small index.
CREATE INDEX pastes_expires_at_idx
    ON pastes (expires_at)
    WHERE expires_at IS NOT NULL;
