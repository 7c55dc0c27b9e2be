-- Back to 0003's LANGUAGE sql function and 0002's index.

ALTER TABLE rate_limits RESET (fillfactor);
CREATE INDEX rate_limits_updated_at_idx ON rate_limits (updated_at);

CREATE OR REPLACE FUNCTION rate_limit_take(
    p_bucket text, p_client text, p_burst double precision, p_per_second double precision
) RETURNS double precision
LANGUAGE sql VOLATILE
AS $$
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
    RETURNING tokens
$$;
