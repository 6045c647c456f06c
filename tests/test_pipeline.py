"""The pipeline: validation, last-good-config, debounce, and the endpoint-only fast path."""

from __future__ import annotations

import asyncio
from pathlib import Path

from controlplane.cache import SnapshotCache
from controlplane.dsl import AddressPolicy
from controlplane.model import Endpoint
from controlplane.pipeline import Debounce, Pipeline
from controlplane.sources.files import FileInputs, FileSource
from controlplane.translate import CLUSTER_TYPE, ENDPOINT_TYPE, LISTENER_TYPE, ROUTE_TYPE
from tests.xds_harness import services_yaml


def inputs(text: str) -> FileInputs:
    return FileInputs(texts=(("routes.yaml", text),))


def make_pipeline(debounce: Debounce | None = None) -> tuple[Pipeline, SnapshotCache]:
    cache = SnapshotCache()
    return Pipeline(cache, AddressPolicy(), debounce or Debounce(), clock=lambda: 1000.0), cache


def test_a_valid_config_is_published() -> None:
    pipeline, cache = make_pipeline()
    assert pipeline.apply(inputs(services_yaml("a")))
    snapshot = cache.get("any-group")
    assert snapshot is not None and list(snapshot.get(CLUSTER_TYPE).resources) == ["a"]
    assert pipeline.state.version == snapshot.version and pipeline.state.problems == []


def test_an_invalid_edit_is_reported_and_the_last_good_config_keeps_serving() -> None:
    pipeline, cache = make_pipeline()
    pipeline.apply(inputs(services_yaml("a")))
    good = cache.get("")
    assert not pipeline.apply(inputs(services_yaml("a").replace("port: 10000", "port: 0")))
    assert cache.get("") is good
    assert [str(p) for p in pipeline.state.problems] == [
        "routes.yaml:3:11: listeners[0].port: port 0 out of range 1-65535"
    ]
    assert pipeline.apply(inputs(services_yaml("a", "b")))
    assert pipeline.state.problems == []


def test_unreadable_files_are_problems_too() -> None:
    pipeline, cache = make_pipeline()
    assert not pipeline.apply(FileInputs(texts=(), unreadable=(("gone.yaml", "No such file"),)))
    assert not cache.ready
    assert str(pipeline.state.problems[0]) == "gone.yaml:0:0: cannot read: No such file"


def test_the_file_source_says_where_a_file_stops_being_utf8(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_bytes(b"services:\n  caf\xe9: {}\n")
    read = FileSource([str(path)]).read()
    assert read.unreadable == ((str(path), "not UTF-8 text: byte 0xe9 at line 2, column 6"),)


def test_node_groups_get_their_own_snapshots() -> None:
    text = services_yaml("a").replace(
        "listeners:\n",
        "listeners:\n  - name: edge-only\n    port: 10001\n    nodes: [edge]\n"
        "    routes:\n      - match: {prefix: /}\n        to: a\n",
        1,
    )
    pipeline, cache = make_pipeline()
    assert pipeline.apply(inputs(text))
    edge, other = cache.get("edge"), cache.get("other")
    assert edge is not None and other is not None
    assert list(edge.get(LISTENER_TYPE).resources) == ["edge-only", "main"]
    assert list(other.get(LISTENER_TYPE).resources) == ["main"]


def test_an_endpoint_change_rebuilds_only_endpoints() -> None:
    pipeline, cache = make_pipeline()
    pipeline.apply(inputs(services_yaml("a", "b")))
    before = cache.get("")
    pipeline.apply(inputs(services_yaml("a", "b").replace("127.0.0.1:8081", "127.0.0.1:9999")))
    after = cache.get("")
    assert before is not None and after is not None
    assert pipeline.translator.built == 1  # one ClusterLoadAssignment, nothing else
    for type_url in (CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE):
        assert after.get(type_url) == before.get(type_url)
        assert all(after.get(type_url).resources[n] is r for n, r in before.get(type_url).resources.items())
    assert after.get(ENDPOINT_TYPE).resources["a"] is before.get(ENDPOINT_TYPE).resources["a"]
    assert after.get(ENDPOINT_TYPE).resources["b"].version != before.get(ENDPOINT_TYPE).resources["b"].version


def test_an_unchanged_config_changes_nothing() -> None:
    pipeline, cache = make_pipeline()
    notices: list[int] = []
    cache.subscribe(lambda: notices.append(1))
    pipeline.apply(inputs(services_yaml("a")))
    pipeline.apply(inputs("# a comment changes the text, not the config\n" + services_yaml("a")))
    assert notices == [1]
    assert len(pipeline.state.history) == 1


def test_debounce_applies_only_the_last_of_a_burst() -> None:
    async def scenario() -> list[str]:
        pipeline, _ = make_pipeline(Debounce(quiet=0.05, max_delay=1.0))
        applied: list[str] = []
        original = pipeline.apply
        pipeline.apply = lambda i: applied.append(i.texts[0][1]) or original(i)  # type: ignore[method-assign]
        runner = asyncio.create_task(pipeline.run())
        for n in range(5):
            pipeline.submit(inputs(services_yaml(*[f"s{i}" for i in range(n + 1)])))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        runner.cancel()
        return applied

    applied = asyncio.run(scenario())
    assert applied == [services_yaml("s0", "s1", "s2", "s3", "s4")]


def test_debounce_never_waits_past_its_maximum() -> None:
    async def scenario() -> int:
        pipeline, _ = make_pipeline(Debounce(quiet=0.05, max_delay=0.1))
        applied: list[int] = []
        pipeline.apply = lambda i: bool(applied.append(1))  # type: ignore[method-assign]
        runner = asyncio.create_task(pipeline.run())
        for n in range(30):  # an edit every 20ms for 0.6s: never quiet for 50ms
            pipeline.submit(inputs(f"# {n}\n"))
            await asyncio.sleep(0.02)
        runner.cancel()
        return len(applied)

    assert asyncio.run(scenario()) >= 3


def test_sustained_churn_is_limited_but_a_burst_goes_out_at_once() -> None:
    async def scenario() -> tuple[int, int]:
        pipeline, _ = make_pipeline(Debounce(quiet=0.005, max_delay=0.02, min_interval=0.1, burst=3))
        applied: list[float] = []
        loop = asyncio.get_running_loop()
        pipeline.apply = lambda i: bool(applied.append(loop.time()))  # type: ignore[method-assign]
        runner = asyncio.create_task(pipeline.run())
        for n in range(100):  # a change every 10ms for 1s
            pipeline.submit(inputs(f"# {n}\n"))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        runner.cancel()
        first_burst = sum(1 for t in applied if t - applied[0] < 0.1)
        return len(applied), first_burst

    total, first_burst = asyncio.run(scenario())
    assert first_burst >= 3  # the burst allowance goes out without waiting
    assert total <= 3 + 14  # then at most one per 100ms (1.3s of churn and settling)


REGISTRY_ROUTES = "services:\n  billing: {discovery: registry}\n"


def _registry_publishes(changes: int, gap: float) -> list[float]:
    """Seconds from the first registry change to each publish, with files quiet for 0.3s."""

    async def scenario() -> list[float]:
        pipeline, _ = make_pipeline(Debounce(quiet=0.3, max_delay=1.0))
        assert pipeline.apply(inputs(REGISTRY_ROUTES))
        loop = asyncio.get_running_loop()
        published: list[float] = []
        original = pipeline.publish
        pipeline.publish = lambda model: published.append(loop.time()) or original(model)  # type: ignore[method-assign]
        runner = asyncio.create_task(pipeline.run())
        started = loop.time()
        for n in range(changes):
            pipeline.submit_discovered({"billing": (Endpoint("10.0.0.1", 8000 + n),)})
            await asyncio.sleep(gap)
        await asyncio.sleep(0.5)
        runner.cancel()
        return [t - started for t in published]

    return asyncio.run(scenario())


def test_an_endpoint_change_after_a_quiet_spell_goes_out_without_the_quiet_wait() -> None:
    """Registry and Kubernetes states arrive whole; only files wait for an editor's second write."""
    published = _registry_publishes(1, 0.0)
    assert len(published) == 1 and published[0] < 0.15  # not the 0.3s quiet time


def test_endpoint_changes_close_behind_the_first_are_gathered() -> None:
    published = _registry_publishes(5, 0.02)
    assert len(published) == 2  # the first at once, the four behind it in one push
    assert published[0] < 0.15 <= 0.3 <= published[1]


def test_the_file_source_reads_a_file_once_its_writer_closes_it(tmp_path: Path) -> None:
    """inotify wakes on close (or rename), not on every write: no half-written file is read."""
    path = tmp_path / "routes.yaml"
    path.write_text("services: {}\n", encoding="utf-8")

    async def scenario() -> tuple[list[str], list[FileInputs]]:
        seen: list[FileInputs] = []
        source = FileSource([str(path)])
        runner = asyncio.create_task(source.run(seen.append))
        await asyncio.sleep(0.1)
        with path.open("w", encoding="utf-8") as writer:
            writer.write("services:\n")
            writer.flush()
            await asyncio.sleep(0.3)  # below the 1s safety poll
            while_open = [i.texts[0][1] for i in seen]
            writer.write("  a: {endpoints: ['10.0.0.1:80']}\n")
        await asyncio.sleep(0.1)
        runner.cancel()
        return while_open, seen

    while_open, seen = asyncio.run(scenario())
    assert while_open == ["services: {}\n"]
    assert [(i.texts[0][1], i.whole) for i in seen] == [
        ("services: {}\n", False),  # the first read, at start
        ("services:\n  a: {endpoints: ['10.0.0.1:80']}\n", True),  # the lone file, closed: complete
    ]


def test_files_of_a_directory_are_never_whole_on_their_own(tmp_path: Path) -> None:
    """Several files may be saved one after the other: the quiet wait gathers them."""
    (tmp_path / "a.yaml").write_text("services: {}\n", encoding="utf-8")

    async def scenario() -> list[FileInputs]:
        seen: list[FileInputs] = []
        runner = asyncio.create_task(FileSource([str(tmp_path)]).run(seen.append))
        await asyncio.sleep(0.1)
        (tmp_path / "b.yaml").write_text("services: {}\n", encoding="utf-8")
        await asyncio.sleep(0.2)
        runner.cancel()
        return seen

    assert [(len(i.texts), i.whole) for i in asyncio.run(scenario())] == [(1, False), (2, False)]


def test_a_whole_file_after_a_quiet_spell_goes_out_without_the_quiet_wait() -> None:
    async def scenario() -> list[float]:
        pipeline, _ = make_pipeline(Debounce(quiet=0.3, max_delay=1.0))
        loop = asyncio.get_running_loop()
        applied: list[float] = []
        pipeline.apply = lambda i: bool(applied.append(loop.time()))  # type: ignore[method-assign]
        runner = asyncio.create_task(pipeline.run())
        started = loop.time()
        pipeline.submit(FileInputs(texts=(("routes.yaml", "services: {}\n"),), whole=True))
        await asyncio.sleep(0.1)
        runner.cancel()
        return [t - started for t in applied]

    assert len(applied := asyncio.run(scenario())) == 1 and applied[0] < 0.1
