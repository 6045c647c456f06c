"""Durable writes (controlplane/fileio.py): atomic, and off the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from controlplane.fileio import LatestWriter, write_atomically


def test_an_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_atomically(tmp_path / "a" / "x.json", "one")
    write_atomically(tmp_path / "a" / "x.json", "two")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["x.json"]
    assert (tmp_path / "a" / "x.json").read_text() == "two"


def test_outside_an_event_loop_the_write_happens_at_once(tmp_path: Path) -> None:
    writer = LatestWriter(tmp_path / "x.json")
    assert writer.submit(lambda: "now") is None
    assert (tmp_path / "x.json").read_text() == "now"


def test_the_loop_runs_on_while_the_disk_is_slow_and_only_the_newest_waiting_content_is_written(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.json"
    writer = LatestWriter(path)
    disk = threading.Event()
    rendered: list[str] = []

    def slow(text: str) -> str:
        rendered.append(text)
        disk.wait(5)
        return text

    async def scenario() -> None:
        first = writer.submit(lambda: slow("first"))
        while not rendered:  # the first write is in the worker thread, stuck on its "disk"
            await asyncio.sleep(0.001)
        later = [writer.submit(lambda t=t: slow(t)) for t in ("second", "third")]  # type: ignore[misc]
        assert not any(t.done() for t in [first, *later] if t is not None)
        disk.set()
        await asyncio.gather(*[t for t in [first, *later] if t is not None])

    asyncio.run(scenario())
    assert rendered == ["first", "third"]
    assert path.read_text() == "third"


def test_a_failed_write_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "file").write_text("not a directory")
    writer = LatestWriter(tmp_path / "file" / "x.json")

    async def scenario() -> None:
        task = writer.submit(lambda: "lost")
        assert task is not None
        assert await task is False  # whoever waits learns it

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert "cannot write" in caplog.text


def test_a_delayed_write_waits_and_takes_what_came_meanwhile(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    writer = LatestWriter(path, delay=0.2)

    async def scenario() -> None:
        first = writer.submit(lambda: "old")
        await asyncio.sleep(0.05)
        assert not path.exists()
        second = writer.submit(lambda: "new")
        assert first is not None and second is not None
        await first
        assert path.read_text() == "new"
        await second

    asyncio.run(scenario())


def test_a_write_cancelled_while_it_waits_is_written_by_flush(tmp_path: Path) -> None:
    """At shutdown the loop cancels a delayed write; `flush` then writes what it would have."""
    path = tmp_path / "x.json"
    writer = LatestWriter(path, delay=10)

    async def scenario() -> None:
        task = writer.submit(lambda: "last change")
        assert task is not None
        await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    assert not path.exists()
    writer.flush()
    assert path.read_text() == "last change"
    writer.flush()  # nothing new: nothing written again
    assert path.read_text() == "last change"
