"""Durable file writes: a crash leaves the old file or the new one, never a mix."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

AFTER_THE_PUSH = 0.1
"""Seconds a state write (checkpoint, registry leases) waits before it starts: a push to every
Envoy (20-30 ms to 50 of them on 2 cores) goes first; measured, writing during it delayed the
last ACK by 3-5 ms (encoding, fsync and the journal work they cause compete for the cores)."""


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary name, fsync, rename over `path`, fsync the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LatestWriter:
    """Durable writes of one file off the event loop: the newest content wins, older ones may be skipped.

    A disk that takes 1-50 ms per fsync must not hold up the loop that pushes to Envoys. Writes
    run in a worker thread one at a time; content offered while one runs waits, and only the
    newest of what waited is written. Failures are logged, and reported to whoever waits for the
    write: the file is a copy for restarts, what is served does not depend on it.
    """

    def __init__(self, path: Path, delay: float = 0.0) -> None:
        self.path = path
        self.delay = delay
        """Seconds a write waits before it starts, in a loop: work of higher priority goes first."""
        self._pending: Callable[[], str] | None = None
        self._handoff = threading.Lock()
        self._writing = threading.Lock()
        self._written = True
        """Whether the last write succeeded."""
        self._tasks: set[asyncio.Task[bool]] = set()
        """Writes under way (kept here: the event loop holds tasks only weakly)."""

    def submit(self, render: Callable[[], str]) -> asyncio.Task[bool] | None:
        """Write what `render` returns; it is called in the worker thread, so it may be slow.

        In an event loop: returns a task that ends once this content, or newer, is on disk (True)
        or could not be written (False); awaiting it is optional. Outside one (tools, tests):
        writes at once, returns None.
        """
        with self._handoff:
            self._pending = render
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return None
        task = loop.create_task(self._flush_soon())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _flush_soon(self) -> bool:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await asyncio.to_thread(self.flush)

    def flush(self) -> bool:
        """Write the newest content offered, if not written yet (blocking; at shutdown, what a
        delayed write had not written yet). Returns whether the newest content is on disk."""
        with self._writing:
            with self._handoff:
                render, self._pending = self._pending, None
            if render is not None:
                try:
                    write_atomically(self.path, render())
                    self._written = True
                except OSError as exc:
                    self._written = False
                    log.error("cannot write %s: %s", self.path, exc)
            return self._written
