-- Compress new pastes' content with lz4 (faster to compress and to read than
-- the default pglz) where the server was built with it: the embedded server
-- of `make run` is not, and keeps pglz. Rows already stored keep theirs.
-- depends: 0006_reports_and_takedowns

DO $$
BEGIN
    IF 'lz4' = ANY (SELECT unnest(enumvals) FROM pg_settings
                     WHERE name = 'default_toast_compression') THEN
        ALTER TABLE pastes ALTER COLUMN content SET COMPRESSION lz4;
    END IF;
END
$$;
