"""State-of-the-world protocol over real gRPC with a scripted client (no Envoy)."""

from __future__ import annotations

import dataclasses

from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from controlplane.xds.types import Nack, TypeStatus
from tests.xds_harness import Client, run, running_server, services_yaml, snapshot_of


def test_wildcard_cds_then_ack_then_silence() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            client = Client(h.port)
            await client.request(CLUSTER_TYPE)
            response = await client.read()
            assert client.names_of(response) == ["a", "b"]
            await client.ack(response)
            assert await client.silent()
            status = next(iter(h.registry.connections.values())).session.status()[0]
            assert status.acked_version == response.version_info
            await client.close()

    run(scenario())


def test_nothing_is_sent_before_the_first_snapshot() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            client = Client(h.port)
            await client.request(CLUSTER_TYPE)
            assert await client.silent()
            h.publish(snapshot_of(services_yaml("a")))
            assert client.names_of(await client.read()) == ["a"]
            await client.close()

    run(scenario())


def test_nack_is_recorded_and_the_rejected_version_never_resent() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a")))
            client = Client(h.port, node_id="edge-1")
            await client.request(CLUSTER_TYPE)
            first = await client.read()
            await client.ack(first)
            h.publish(snapshot_of(services_yaml("a", "b")))
            bad = await client.read()
            await client.request(CLUSTER_TYPE, [], first.version_info, bad.nonce, error="cluster b: bad")
            assert await client.silent()
            h.publish(snapshot_of(services_yaml("a")))  # back and forth: the rejected one must not return
            h.publish(snapshot_of(services_yaml("a", "b")))
            assert await client.silent()
            event = h.registry.nacks[-1]
            assert (event.node_id, event.nack.version, event.nack.message) == (
                "edge-1",
                bad.version_info,
                "cluster b: bad",
            )
            h.publish(snapshot_of(services_yaml("a", "c")))
            fixed = await client.read()
            assert client.names_of(fixed) == ["a", "c"]
            await client.close()

    run(scenario())


def test_stale_nonce_is_ignored() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a")))
            client = Client(h.port)
            await client.request(CLUSTER_TYPE)
            response = await client.read()
            await client.request(CLUSTER_TYPE, [], "", "stale-nonce", error="old rejection")
            assert await client.silent()
            assert not h.registry.nacks
            await client.ack(response)
            assert await client.silent()
            await client.close()

    run(scenario())


def test_subscribe_to_a_missing_name_then_create_it() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a")))
            client = Client(h.port)
            await client.request(ENDPOINT_TYPE, ["later"])
            assert await client.silent()
            h.publish(snapshot_of(services_yaml("a", "later")))
            response = await client.read()
            assert client.names_of(response) == ["later"]
            await client.close()

    run(scenario())


async def _subscribe_then_drop_b(client: Client) -> tuple[object, object]:
    """Ask for the endpoints of `a` and `b`, ACK, then keep only `a`: the two responses."""
    await client.request(ENDPOINT_TYPE, ["a", "b"])
    both = await client.read()
    await client.request(ENDPOINT_TYPE, ["a"], both.version_info, both.nonce)
    return both, await client.read()


def test_unsubscribe_changes_the_version_without_resending_what_the_client_holds() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            client = Client(h.port)
            both, only_a = await _subscribe_then_drop_b(client)
            assert client.names_of(both) == ["a", "b"]
            assert (client.names_of(only_a), only_a.version_info != both.version_info) == ([], True)
            await client.close()

    run(scenario())


def test_endpoint_and_route_updates_carry_only_what_changed() -> None:
    """xDS spec, "Grouping resources into responses": only Listener and Cluster responses need all."""

    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b", "c")))
            client = Client(h.port)
            await _settle(client)
            h.publish(snapshot_of(services_yaml("a", "b", "c").replace("127.0.0.1:8081", "127.0.0.1:9081")))
            eds = await client.read()
            assert (eds.type_url, client.names_of(eds)) == (ENDPOINT_TYPE, ["b"])
            await client.ack(eds)
            assert await client.silent()
            await client.close()

    run(scenario())


def test_after_a_nack_the_next_update_carries_what_the_client_still_lacks() -> None:
    """A NACKed response is rejected whole: `a` came with the bad `b`, so Envoy still lacks it."""

    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            client = Client(h.port)
            held = await _settle(client)
            moved = services_yaml("a", "b").replace("127.0.0.1:808", "127.0.0.1:908")
            h.publish(snapshot_of(moved))
            rejected = await client.read()
            assert client.names_of(rejected) == ["a", "b"]
            await client.request(ENDPOINT_TYPE, ["a", "b"], held[ENDPOINT_TYPE].version_info, rejected.nonce, "bad b")
            eds = await client.read()  # `b` quarantined at the version Envoy holds; `a` still due
            assert (eds.type_url, client.names_of(eds)) == (ENDPOINT_TYPE, ["a"])
            await client.close()

    run(scenario())


def test_a_name_dropped_and_asked_for_again_is_sent_again() -> None:
    """A cluster removed and added back is a new watch in Envoy: it holds no endpoints for it."""

    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            client = Client(h.port)
            _, only_a = await _subscribe_then_drop_b(client)
            await client.request(ENDPOINT_TYPE, ["a", "b"], only_a.version_info, only_a.nonce)
            again = await client.read()
            assert client.names_of(again) == ["b"]
            await client.close()

    run(scenario())


def test_reconnect_with_the_current_version_gets_nothing() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a")))
            first = Client(h.port)
            await first.request(LISTENER_TYPE)
            response = await first.read()
            await first.close()
            again = Client(h.port)
            await again.request(LISTENER_TYPE, [], response.version_info)
            assert await again.silent()
            await again.close()

    run(scenario())


def test_make_before_break_order_when_a_route_moves_to_a_new_service() -> None:
    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("old")))
            client = Client(h.port)
            held = await _settle(client)
            h.publish(snapshot_of(services_yaml("new").replace("/new", "/old")))
            cds = await client.read()
            assert (cds.type_url, client.names_of(cds)) == (CLUSTER_TYPE, ["new", "old"])  # old kept
            # Envoy asks for the new cluster's endpoints and ACKs CDS only once it has them.
            await client.request(
                ENDPOINT_TYPE, ["new", "old"], held[ENDPOINT_TYPE].version_info, held[ENDPOINT_TYPE].nonce
            )
            eds = await client.read()
            assert (eds.type_url, client.names_of(eds)) == (ENDPOINT_TYPE, ["new"])  # old: held
            await client.ack(eds)
            assert await client.silent()  # routes wait until the clusters are acknowledged (warm)
            await client.ack(cds)
            rds = await client.read()
            assert rds.type_url == ROUTE_TYPE
            await client.ack(rds)
            final = await client.read()
            assert (final.type_url, client.names_of(final)) == (CLUSTER_TYPE, ["new"])  # now removed
            await client.close()

    run(scenario())


async def _settle(client: Client) -> dict[str, object]:
    """Drive a fresh client through CDS, EDS, LDS, RDS as Envoy does at start-up; return the responses."""
    held = {}
    await client.request(CLUSTER_TYPE)
    held[CLUSTER_TYPE] = cds = await client.read()
    await client.request(ENDPOINT_TYPE, client.names_of(cds))
    await client.ack(cds)
    held[ENDPOINT_TYPE] = eds = await client.read()
    await client.ack(eds)
    await client.request(LISTENER_TYPE)
    held[LISTENER_TYPE] = lds = await client.read()
    await client.request(ROUTE_TYPE, ["main"])
    await client.ack(lds)
    held[ROUTE_TYPE] = rds = await client.read()
    await client.ack(rds)
    assert await client.silent()
    return held


def test_a_changed_cluster_gets_its_unchanged_endpoints_again() -> None:
    """Envoy re-creates a changed cluster, which warms until endpoints arrive (15s otherwise, measured)."""

    async def scenario() -> None:
        async with running_server() as h:
            h.publish(snapshot_of(services_yaml("a", "b")))
            client = Client(h.port)
            held = await _settle(client)
            h.publish(snapshot_of(services_yaml("a", "b", connect_timeout="3s")))
            cds = await client.read()
            eds = await client.read()
            assert (cds.type_url, eds.type_url, client.names_of(eds)) == (CLUSTER_TYPE, ENDPOINT_TYPE, ["a", "b"])
            assert eds.version_info == held[ENDPOINT_TYPE].version_info  # unchanged, sent anyway
            await client.ack(eds)
            await client.ack(cds)
            assert await client.silent()  # once: nothing more after the ACKs
            await client.close()

    run(scenario())


def test_type_status_as_dict_is_what_asdict_gives() -> None:
    """The status API's cheap conversion keeps the shape `dataclasses.asdict` gave."""
    nack = Nack("v1", "3", "bad", 13, 5.0)
    for status in (
        TypeStatus(ENDPOINT_TYPE, "v2", "v1", 4.0, "3", True, ("a", "b"), nack),
        TypeStatus(CLUSTER_TYPE, "v1", "v1", 4.0, "1", False, None, None),
    ):
        assert status.as_dict() == dataclasses.asdict(status)
