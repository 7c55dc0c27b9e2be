"""Slow clients over real HTTP: 500 connections sending headers or a body at
one byte a second hold nothing that other requests need."""

from __future__ import annotations

import pytest

from bench.slowclients import measure, server_workers
from tests.servers import gunicorn

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def test_500_slow_clients_leave_health_and_reads_answering_at_once(database_url):
    with gunicorn(database_url) as server:
        path = server.create_text(b"read me while others dribble")
        result = measure(
            server.port,
            path,
            server_workers(server.process.pid),
            connections=500,
            seconds=10,
            probes=50,
        )
    assert result.connections_opened == 500
    assert result.probe_failures == 0
    assert result.healthz_ms["p99"] < 100, result
    assert result.read_ms["p99"] < 100, result
    # What the slow clients held is given back once they go.
    assert result.rss_mib_after - result.rss_mib_before < 20, result
    assert server.returncode == 0, server.log[-3000:]
