"""Burn-after-read under real concurrent requests, in process (threads sharing
the app and its pool). The same is checked over HTTP in test_e2e.py."""

from __future__ import annotations

import threading

from falcon import testing


def concurrent_gets(client: testing.TestClient, path: str, readers: int) -> list[int]:
    barrier = threading.Barrier(readers)
    statuses: list[int] = []
    lock = threading.Lock()

    def read() -> None:
        barrier.wait()
        status = client.simulate_get(path).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=read) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


def test_exactly_one_of_many_concurrent_readers_gets_a_burn_paste(client, create):
    for suffix in ("", "/raw", "", "/raw", ""):
        paste_id = create("only once", burn_after_read=True)["id"]
        statuses = concurrent_gets(client, f"/api/v1/pastes/{paste_id}{suffix}", readers=8)
        assert sorted(statuses) == [200] + [404] * 7


def test_concurrent_readers_of_a_normal_paste_all_get_it(client, create):
    paste_id = create("for everyone")["id"]
    assert concurrent_gets(client, f"/api/v1/pastes/{paste_id}/raw", readers=8) == [200] * 8
