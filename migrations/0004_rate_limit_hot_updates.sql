-- Make a token take cheap enough to sit in every create:
-- * rate_limit_take becomes PL/pgSQL, whose statement plans are cached per
--   session; a LANGUAGE sql function with an INSERT in it is planned again on
--   every call, which made a rate-limited create cost about twice a plain one.
-- * Every take updates updated_at. With an index on it no update can be HOT, so
--   each take left a dead tuple in both indexes and the table grew between
--   vacuums. Without it, and with room on each page (fillfactor 50), a take
--   rewrites the row in place of the page. The worker's clean-up of idle
--   buckets now scans the table: one scan per tick over a table of one row per
--   active client.
-- depends: 0003_rate_limit_take_function

DROP INDEX rate_limits_updated_at_idx;
ALTER TABLE rate_limits SET (fillfactor = 50);

CREATE OR REPLACE FUNCTION rate_limit_take(
    p_bucket text, p_client text, p_burst double precision, p_per_second double precision
) RETURNS double precision
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    left_over double precision;
BEGIN
    -- Refill the bucket at p_per_second up to p_burst, then take one token.
    -- Returns the tokens left: negative means refused (and the bucket stays
    -- near empty while the client keeps knocking). The row lock orders a
    -- client's concurrent requests.
    INSERT INTO rate_limits AS r (bucket, client, tokens, updated_at)
    VALUES (p_bucket, p_client, p_burst - 1, now())
    ON CONFLICT (bucket, client) DO UPDATE
       SET tokens = GREATEST(
               -1,
               LEAST(p_burst, r.tokens + extract(epoch FROM now() - r.updated_at) * p_per_second) - 1
           ),
           updated_at = now()
    RETURNING tokens INTO left_over;
    RETURN left_over;
END
$$;
