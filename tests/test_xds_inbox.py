"""The per-stream inbox: bounded requests, coalesced change notices; a stuck client costs nothing."""

from __future__ import annotations

import asyncio

from controlplane.translate import CLUSTER_TYPE
from controlplane.xds.server import _CHANGED, _END, Inbox
from tests.xds_harness import Client, run, running_server, services_yaml, snapshot_of


def test_many_change_notices_become_one() -> None:
    async def scenario() -> list[object]:
        inbox = Inbox()
        for _ in range(10_000):
            inbox.notify()
        await inbox.put("request")
        inbox.end()
        return [await inbox.next() for _ in range(3)]

    assert run(scenario()) == ["request", _CHANGED, _END]


def test_requests_beyond_the_limit_wait_for_room() -> None:
    async def scenario() -> bool:
        inbox = Inbox(limit=2)
        await inbox.put(1)
        await inbox.put(2)
        third = asyncio.create_task(inbox.put(3))
        await asyncio.sleep(0.05)
        blocked = not third.done()
        await inbox.next()
        await asyncio.wait_for(third, 1)
        return blocked

    assert run(scenario())


def test_a_client_that_never_acks_does_not_slow_the_others() -> None:
    async def scenario() -> float:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a")))
            stuck = Client(h.port, node_id="stuck")
            await stuck.request(CLUSTER_TYPE)  # reads its first response, then never ACKs
            await stuck.read()
            good = Client(h.port, node_id="good")
            await good.request(CLUSTER_TYPE)
            await good.ack(await good.read())
            loop = asyncio.get_running_loop()
            started = loop.time()
            for n in range(200):
                h.publish(snapshot_of(services_yaml("a", port=9000 + n, connect_timeout=f"{n + 1}s")))
                response = await good.read()
                await good.ack(response)
            elapsed = loop.time() - started
            assert await stuck.silent()  # nothing more for the stuck one: its type is still in flight
            await stuck.close()
            await good.close()
            return elapsed

    assert run(scenario()) < 10.0  # 200 full round trips, unaffected by the stuck client


def test_responses_to_send_come_before_requests_and_change_notices() -> None:
    async def scenario() -> list[object]:
        inbox = Inbox()
        inbox.notify()
        await inbox.put("request")
        inbox.send([])  # nothing to send: nothing queued
        inbox.send(["cds", "eds"])
        inbox.send(["lds"])
        inbox.end()
        return [await inbox.next() for _ in range(4)]

    assert run(scenario()) == [["cds", "eds", "lds"], "request", _CHANGED, _END]


def test_a_request_is_not_applied_past_one_waiting_or_being_handled() -> None:
    async def scenario() -> list[bool]:
        inbox = Inbox()
        seen = [inbox.idle]
        await inbox.put("first")
        seen.append(inbox.idle)  # waiting
        await inbox.next()
        seen.append(inbox.idle)  # handed out, not yet handled
        inbox.notify()
        await inbox.next()  # the loop came back: the first is done
        seen.append(inbox.idle)
        return seen

    assert run(scenario()) == [True, False, False, True]
