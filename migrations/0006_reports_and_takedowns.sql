-- Abuse reports, the tombstones of pastes an operator removed (reads answer
-- 451 with the reason), and the blocklist of content hashes (a create of
-- blocked content answers 451 and stores nothing).
-- depends: 0005_view_limits_and_passwords

-- No foreign key to pastes: a cascade would cost every purge a lookup here.
-- Reports of pastes that are gone are ignored by list_reports and deleted by
-- the worker.
CREATE TABLE reports (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    paste_id    text        NOT NULL,
    reason      text        NOT NULL,
    detail      text,
    reported_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reports_reason_check
        CHECK (reason IN ('spam', 'malware', 'phishing', 'illegal', 'other'))
);

-- Serves list_reports' join and remove_paste's clean-up.
CREATE INDEX reports_paste_id_idx ON reports (paste_id);

CREATE TABLE removed_pastes (
    id         text        PRIMARY KEY,
    reason     text        NOT NULL,
    removed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE blocked_content (
    sha256     bytea       PRIMARY KEY,
    reason     text,
    blocked_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT blocked_content_sha256_check CHECK (length(sha256) = 32)
);

-- The blocklist's key: SHA-256 of the content's exact UTF-8 bytes, the same
-- bytes a client sent and reads back.
CREATE FUNCTION content_sha256(content text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN sha256(convert_to(content, 'UTF8'));
