"""Incremental (delta) xDS over real gRPC with a scripted client (no Envoy)."""

from __future__ import annotations

from typing import Any

from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE
from tests.xds_harness import Client, resource_name, run, running_server, services_yaml, snapshot_of


def names(response: Any) -> list[str]:
    return sorted(r.name for r in response.resources)


def test_wildcard_then_only_changes_then_removals() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b", "c")))
            client = Client(h.port, delta=True)
            await client.delta(CLUSTER_TYPE)
            first = await client.read()
            assert names(first) == ["a", "b", "c"] and not first.removed_resources
            assert [resource_name(r.resource) for r in first.resources] == ["a", "b", "c"]
            await client.delta_ack(first)
            assert await client.silent()
            h.publish(snapshot_of(services_yaml("a", "b", "c", connect_timeout="3s")))
            changed = await client.read()
            assert names(changed) == ["a", "b", "c"]
            await client.delta_ack(changed)
            h.publish(snapshot_of(services_yaml("a", "b", connect_timeout="3s")))
            removal = await client.read()
            assert (names(removal), list(removal.removed_resources)) == ([], ["c"])
            await client.close()

    run(scenario())


def test_a_changed_cluster_gets_its_unchanged_endpoints_again() -> None:
    """Envoy re-creates a changed cluster and, on delta, asks for nothing: endpoints must follow."""

    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            client = Client(h.port, delta=True)
            await client.delta(CLUSTER_TYPE)
            await client.delta(ENDPOINT_TYPE, subscribe=["a", "b"])
            cds = await client.read()
            await client.delta_ack(await client.read())
            await client.delta_ack(cds)
            assert await client.silent()
            text = services_yaml("a", "b").replace(
                "'127.0.0.1:8080'], connect_timeout: 2s", "'127.0.0.1:8080'], connect_timeout: 3s"
            )
            h.publish(snapshot_of(text))  # cluster a changes, its endpoints do not
            cds, eds = await client.read(), await client.read()
            assert (cds.type_url, names(cds), eds.type_url, names(eds)) == (CLUSTER_TYPE, ["a"], ENDPOINT_TYPE, ["a"])
            await client.delta_ack(eds)
            await client.delta_ack(cds)
            assert await client.silent()
            await client.close()

    run(scenario())


def test_after_a_nack_the_resources_envoy_did_not_blame_go_again() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            client = Client(h.port, delta=True)
            await client.delta(CLUSTER_TYPE)
            await client.delta_ack(await client.read())
            h.publish(snapshot_of(services_yaml("a", "b", connect_timeout="3s")))  # both change
            both = await client.read()
            assert names(both) == ["a", "b"]
            await client.delta_ack(both, error="Error adding/updating cluster(s) a: bad")
            again = await client.read()  # a is quarantined; b was not at fault
            assert names(again) == ["b"]
            assert again.resources[0].version == next(r.version for r in both.resources if r.name == "b")
            await client.delta_ack(again)
            assert await client.silent()
            assert [e.name for e in h.cache.quarantine.entries.values()] == ["a"]
            await client.close()

    run(scenario())


def test_an_endpoint_change_sends_only_that_assignment() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            client = Client(h.port, delta=True)
            await client.delta(ENDPOINT_TYPE, subscribe=["a", "b"])
            await client.delta_ack(await client.read())
            text = services_yaml("a", "b").replace("127.0.0.1:8081", "127.0.0.1:9999")
            h.publish(snapshot_of(text))
            only_b = await client.read()
            assert names(only_b) == ["b"]
            await client.close()

    run(scenario())


def test_nack_restores_and_the_rejected_version_is_never_resent() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a")))
            client = Client(h.port, delta=True)
            await client.delta(CLUSTER_TYPE)
            await client.delta_ack(await client.read())
            h.publish(snapshot_of(services_yaml("a", "b")))
            bad = await client.read()
            assert names(bad) == ["b"]
            await client.delta_ack(bad, error="cluster b: invalid")
            assert await client.silent()
            h.publish(snapshot_of(services_yaml("a")))
            h.publish(snapshot_of(services_yaml("a", "b")))
            assert await client.silent()  # the same version of b: never again
            assert h.registry.nacks[-1].nack.message == "cluster b: invalid"
            h.publish(snapshot_of(services_yaml("a", "b", connect_timeout="5s")))
            fixed = await client.read()
            assert names(fixed) == ["a", "b"]
            await client.close()

    run(scenario())


def test_reconnect_with_initial_versions_sends_nothing_unchanged() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            first = Client(h.port, delta=True)
            await first.delta(CLUSTER_TYPE)
            held = await first.read()
            await first.close()
            versions = {r.name: r.version for r in held.resources}
            again = Client(h.port, delta=True)
            await again.delta(CLUSTER_TYPE, initial=versions)
            assert await again.silent()
            stale = dict(versions, a="0000")
            third = Client(h.port, delta=True)
            await third.delta(CLUSTER_TYPE, initial={**stale, "gone": "1"})
            update = await third.read()
            assert (names(update), list(update.removed_resources)) == (["a"], ["gone"])
            await again.close()
            await third.close()

    run(scenario())


def test_subscribe_to_a_missing_name_then_create_it_and_unsubscribe() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a")))
            client = Client(h.port, delta=True)
            await client.delta(ENDPOINT_TYPE, subscribe=["later"])
            assert await client.silent()
            h.publish(snapshot_of(services_yaml("a", "later")))
            created = await client.read()
            assert names(created) == ["later"]
            await client.delta_ack(created)
            await client.delta(ENDPOINT_TYPE, unsubscribe=["later"])
            assert await client.silent()  # lets the unsubscribe land before the change below
            h.publish(snapshot_of(services_yaml("a", "later", port=9000)))
            assert await client.silent()
            await client.close()

    run(scenario())
