"""bodies.LargeBodies: large bodies take a slot, a few at a time per process."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from service.bodies import LargeBodies
from service.errors import ServerBusy
from tests.conftest import run


def request(length: int | None) -> SimpleNamespace:
    return SimpleNamespace(content_length=length)


def test_a_declared_large_body_takes_a_slot_and_gives_it_back():
    gate = LargeBodies(threshold=100, slots=1, wait=0.05)

    async def scenario() -> None:
        async with gate.admit(request(101)) as first:
            assert first.held
            with pytest.raises(ServerBusy):  # the one slot is taken
                async with gate.admit(request(500)):
                    pass
            async with gate.admit(request(100)) as small:  # at the threshold: no slot
                assert not small.held
        async with gate.admit(request(101)) as again:  # given back
            assert again.held

    run(scenario)


def test_a_chunked_body_takes_its_slot_when_it_grows_large():
    gate = LargeBodies(threshold=100, slots=1, wait=1.0)
    order: list[str] = []

    async def scenario() -> None:
        async with gate.admit(request(None)) as growing:
            await growing.grown_to(50)
            assert not growing.held
            await growing.grown_to(101)
            assert growing.held

            async def other() -> None:
                async with gate.admit(request(1000)):
                    order.append("other")

            waiting = asyncio.ensure_future(other())
            await asyncio.sleep(0.01)
            order.append("first done")
        await waiting

    run(scenario)
    assert order == ["first done", "other"]
