"""Route files on disk: read them, and notice when they change.

On Linux, inotify wakes the source the moment a watched directory changes; elsewhere (or if
inotify is unavailable) it polls every `interval`. Either way a change is confirmed by stat and
content, and a slow poll keeps running as a safety net for filesystems that send no events
(some network mounts). An update is emitted only when some content actually changed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from controlplane.dsl.loader import MAX_FILE_BYTES, not_utf8
from controlplane.sources.inotify import Inotify, open_inotify

log = logging.getLogger(__name__)

SAFETY_POLL = 1.0
"""With inotify, files are still polled this often in case an event never comes."""


@dataclass(frozen=True)
class FileInputs:
    """The text of every route file, and the files that could not be read."""

    texts: tuple[tuple[str, str], ...]
    unreadable: tuple[tuple[str, str], ...] = ()
    """(path, reason) for files that exist in the set but could not be read."""
    whole: bool = field(default=False, compare=False)
    """Read just after the only watched file was closed by its writer or renamed into place: a
    complete config, with no second file that may still be on its way (see Debounce)."""


class FileSource:
    """Watches route files and directories of *.yaml / *.yml files."""

    def __init__(self, paths: Iterable[str], interval: float = 0.05) -> None:
        self.paths = tuple(paths)
        self.interval = interval
        self._stats: dict[str, tuple[int, int, int]] = {}
        self._last: FileInputs | None = None
        self.checked_at = 0.0
        """When the files were last checked (wall clock): the source's sync age."""

    def files(self) -> list[str]:
        """The files currently in the watched set, sorted."""
        found: set[str] = set()
        for path in self.paths:
            p = Path(path)
            if p.is_dir():
                found.update(str(f) for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
            else:
                found.add(path)
        return sorted(found)

    def read(self) -> FileInputs:
        """Read every file now."""
        texts: list[tuple[str, str]] = []
        unreadable: list[tuple[str, str]] = []
        for path in self.files():
            data = b""
            try:
                data = Path(path).read_bytes()
                if len(data) > MAX_FILE_BYTES:
                    raise OSError(f"file is larger than {MAX_FILE_BYTES} bytes")
                texts.append((path, data.decode("utf-8")))
            except UnicodeDecodeError as exc:
                unreadable.append((path, not_utf8(data, exc)))
            except OSError as exc:
                unreadable.append((path, str(exc)))
        return FileInputs(tuple(texts), tuple(unreadable))

    def _stat_changed(self) -> bool:
        stats: dict[str, tuple[int, int, int]] = {}
        for path in self.files():
            try:
                st = Path(path).stat()
                stats[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stats[path] = (-1, -1, -1)
        changed = stats != self._stats
        self._stats = stats
        return changed

    def poll(self) -> FileInputs | None:
        """New inputs if any file changed since the last poll, else None."""
        self.checked_at = time.time()
        if not self._stat_changed():
            return None
        inputs = self.read()
        if inputs == self._last:
            return None
        self._last = inputs
        return inputs

    async def run(self, emit: Callable[[FileInputs], None]) -> None:
        """Emit the current inputs, then every change, until cancelled."""
        notify = open_inotify(self.paths)
        woken = asyncio.Event()
        if notify is not None:
            asyncio.get_running_loop().add_reader(notify.fd, woken.set)
        try:
            woke = False
            while True:
                self._emit_if_changed(emit, whole=woke and self._single_file())
                woke = await self._sleep(woken, notify)
        finally:
            if notify is not None:
                asyncio.get_running_loop().remove_reader(notify.fd)
                notify.close()

    def _single_file(self) -> bool:
        return len(self.paths) == 1 and not Path(self.paths[0]).is_dir()

    def _emit_if_changed(self, emit: Callable[[FileInputs], None], whole: bool) -> None:
        inputs = self.poll()
        if inputs is not None:
            log.info("route files changed: %s", ", ".join(p for p, _ in inputs.texts) or "(none)")
            emit(replace(inputs, whole=whole))

    async def _sleep(self, woken: asyncio.Event, notify: Inotify | None) -> bool:
        """Until inotify reports a change (True: a writer closed or renamed a file), or the poll
        interval (the safety net with inotify) passes (False: a change may be half-written)."""
        timeout = self.interval if notify is None else max(self.interval, SAFETY_POLL)
        try:
            await asyncio.wait_for(woken.wait(), timeout)
        except TimeoutError:
            return False
        woken.clear()
        if notify is not None:
            notify.drain()
        return True
