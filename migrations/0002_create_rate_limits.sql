-- Token buckets of the per-client rate limits, shared by every web process.
-- UNLOGGED: limiter state is worth nothing after a crash, and skipping the
-- WAL keeps the extra write of a rate-limited request cheap.
-- depends: 0001_create_pastes

CREATE UNLOGGED TABLE rate_limits (
    bucket     text             NOT NULL,
    client     text             NOT NULL,
    tokens     double precision NOT NULL,
    updated_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (bucket, client)
);

-- Serves delete_stale_rate_limits (the worker's clean-up of idle buckets).
CREATE INDEX rate_limits_updated_at_idx ON rate_limits (updated_at);
