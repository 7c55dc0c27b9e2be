"""Per-client rate limits, kept in PostgreSQL and shared by every process."""

from __future__ import annotations

import tracemalloc

import pytest
from falcon import testing

from service.app import create_app
from service.db import SyncDatabase
from service.ratelimit import MAX_FORWARDED_HOPS, MAX_HOP_CHARS, ClientKeys
from service.worker import Worker
from tests.conftest import assert_problem

PATH = "/api/v1/pastes"


@pytest.fixture
def limited(config, db):
    """Two apps (as two processes would be) sharing one database's limits."""
    from dataclasses import replace

    limited_config = replace(
        config,
        rate_limits=True,
        rate_limit_create_burst=3,
        rate_limit_creates_per_minute=6,  # one token every 10 s
        rate_limit_miss_burst=4,
        rate_limit_misses_per_minute=6,
        trusted_proxies=("10.0.0.0/8",),
    )
    return [testing.TestClient(create_app(limited_config, db=db)) for _ in range(2)]


def create(client, remote_addr="192.0.2.1", **headers):
    return client.simulate_post(
        PATH, json={"content": "x"}, remote_addr=remote_addr, headers=headers or None
    )


def test_creates_beyond_the_burst_get_429_with_retry_after(limited):
    first, second = limited
    assert [create(first).status_code for _ in range(2)] == [201, 201]
    assert create(second).status_code == 201  # the other process shares the bucket
    refused = create(first)
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    assert_problem(create(second), 429)
    # Another client is not affected.
    assert create(first, remote_addr="192.0.2.2").status_code == 201


def test_a_refused_create_stores_nothing(limited, sql):
    first, _ = limited
    for _ in range(3):
        create(first)
    stored = sql.execute("SELECT count(*) FROM pastes").fetchone()[0]
    assert create(first).status_code == 429
    assert sql.execute("SELECT count(*) FROM pastes").fetchone()[0] == stored == 3


def test_bucket_refills_with_time(limited, sql):
    first, _ = limited
    for _ in range(3):
        create(first)
    assert create(first).status_code == 429
    sql.execute("UPDATE rate_limits SET updated_at = updated_at - interval '30 seconds'")
    assert create(first).status_code == 201


def test_repeated_misses_are_slowed_down_but_hits_are_free(limited, sql):
    first, second = limited
    paste_id = create(first, remote_addr="192.0.2.9").json["id"]
    writes_before = sql.execute("SELECT count(*) FROM rate_limits").fetchone()[0]
    for _ in range(10):
        assert first.simulate_get(f"{PATH}/{paste_id}", remote_addr="192.0.2.50").status_code == 200
    # Successful reads never write to the limiter.
    assert sql.execute("SELECT count(*) FROM rate_limits").fetchone()[0] == writes_before
    statuses = [
        first.simulate_get(f"{PATH}/NoSuchPaste{i:02d}", remote_addr="192.0.2.50").status_code
        for i in range(6)
    ]
    assert statuses == [404] * 4 + [429] * 2
    # Once refused, a lookup that misses is answered 429, with Retry-After...
    blocked = first.simulate_head(f"{PATH}/NoSuchPasteYY", remote_addr="192.0.2.50")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    # ...but a read of a paste that exists is never refused.
    for method in ("GET", "HEAD"):
        read = first.simulate_request(method, f"{PATH}/{paste_id}/raw", remote_addr="192.0.2.50")
        assert read.status_code == 200
    # The other process learns of it at its first miss.
    assert second.simulate_get(f"{PATH}/NoSuchPasteZZ", remote_addr="192.0.2.50").status_code == 429


def test_forwarded_for_is_believed_only_from_trusted_proxies(limited):
    first, _ = limited
    # Through the trusted proxy, each forwarded client has its own bucket.
    for client in ("198.51.100.1", "198.51.100.2"):
        statuses = [
            create(first, remote_addr="10.1.2.3", **{"X-Forwarded-For": client}).status_code
            for _ in range(4)
        ]
        assert statuses == [201, 201, 201, 429]
    # From an untrusted peer the header is ignored: all share the peer's bucket.
    statuses = [
        create(
            first, remote_addr="203.0.113.7", **{"X-Forwarded-For": f"198.51.100.{i}"}
        ).status_code
        for i in range(10, 14)
    ]
    assert statuses == [201, 201, 201, 429]


@pytest.mark.parametrize(
    ("remote", "forwarded", "key"),
    [
        ("192.0.2.1", None, "192.0.2.1"),
        ("192.0.2.1", "198.51.100.1", "192.0.2.1"),
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "198.51.100.1, 10.0.0.2", "198.51.100.1"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "garbage", "10.0.0.1"),
        ("10.0.0.1", "10.0.0.3", "10.0.0.3"),
        ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),
        ("garbage", None, "unknown"),
        # Finding 1: a dual-stack bind reports IPv4 clients as IPv4-mapped IPv6.
        ("::ffff:192.0.2.9", None, "192.0.2.9"),
        ("::ffff:10.0.0.1", "198.51.100.4", "198.51.100.4"),
        ("10.0.0.1", "::ffff:198.51.100.5", "198.51.100.5"),
        # Finding 1: hops with ports.
        ("10.0.0.1", "198.51.100.1:5555", "198.51.100.1"),
        ("10.0.0.1", "[2001:db8::1]:443", "2001:db8::/64"),
        ("10.0.0.1", "198.51.100.1:5555, 10.0.0.2:80", "198.51.100.1"),
        # Finding 1: a unix socket has no address; `unix` in TRUSTED_PROXIES trusts it.
        (None, None, "unix"),
        (None, "198.51.100.7", "198.51.100.7"),
    ],
)
def test_client_key(remote, forwarded, key):
    assert ClientKeys(["10.0.0.0/8", "unix"]).key(remote, forwarded) == key


def test_a_unix_peer_is_not_trusted_unless_listed():
    assert ClientKeys(["10.0.0.0/8"]).key(None, "198.51.100.7") == "unix"


def test_the_key_cache_stays_small_whatever_x_forwarded_for_holds():
    """Finding 3: keys were cached by the raw header (up to ~400 KB each), so
    300 misses with long headers held ~110 MB for good."""
    keys = ClientKeys(["10.0.0.0/8"])
    long_header = ", ".join(f"198.51.{i // 256}.{i % 256}" for i in range(20_000))  # ~300 KB
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(300):
            # From an untrusted peer the header is not read at all...
            assert keys.key(f"203.0.113.{i % 250}", long_header) == f"203.0.113.{i % 250}"
            # ...and from a trusted proxy only its last hops, each cut short.
            tail = ", " + "x" * 5000 + f", 192.0.2.{i % 250}"
            assert keys.key("10.0.0.1", long_header + tail) == f"192.0.2.{i % 250}"
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2 * 1024 * 1024, f"{held} bytes held"
    assert MAX_FORWARDED_HOPS * MAX_HOP_CHARS < 1024


def test_limits_can_be_switched_off(client):
    statuses = {create(client).status_code for _ in range(40)}
    assert statuses == {201}


def test_worker_deletes_stale_buckets_only(limited, config, sql):
    first, _ = limited
    create(first, remote_addr="192.0.2.70")
    create(first, remote_addr="192.0.2.71")
    sql.execute(
        "UPDATE rate_limits SET updated_at = now() - interval '2 hours' WHERE client = '192.0.2.70'"
    )
    worker_db = SyncDatabase.from_config(config)
    try:
        tick = Worker(worker_db, rate_limit_retention=3600).run_once()
    finally:
        worker_db.close()
    assert tick.stale_buckets == 1
    assert [row[0] for row in sql.execute("SELECT client FROM rate_limits").fetchall()] == [
        "192.0.2.71"
    ]


def test_a_take_rewrites_the_bucket_in_place(sql):
    # Every limited request updates its bucket: were those updates not HOT,
    # each would leave a dead entry in the indexes until the next vacuum, and
    # takes would slow down as the table bloated under load. (now() is fixed
    # within a transaction, so the bucket is aged by hand between takes.)
    with sql.transaction():
        sql.execute("SELECT rate_limit_take('create', '192.0.2.9', 10, 1)")
        for _ in range(4):
            sql.execute("UPDATE rate_limits SET updated_at = updated_at - interval '1 minute'")
            sql.execute("SELECT rate_limit_take('create', '192.0.2.9', 10, 1)")
        updated, hot = sql.execute(
            "SELECT pg_stat_get_xact_tuples_updated(oid),"
            "       pg_stat_get_xact_tuples_hot_updated(oid)"
            "  FROM pg_class WHERE oid = 'rate_limits'::regclass"
        ).fetchone()
    assert updated == 8
    assert hot == updated
