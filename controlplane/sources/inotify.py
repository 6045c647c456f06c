"""Linux inotify through ctypes: be told the moment a watched directory changes.

Only a wake-up signal: what changed is still worked out by FileSource from stat and content, so
a missed or coalesced event costs nothing but latency (a slow poll remains as a safety net).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
WATCH_MASK = IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE
"""Not IN_MODIFY nor IN_CREATE: they come while a writer still has the file open (truncated,
half-written); a write is complete at IN_CLOSE_WRITE, or at IN_MOVED_TO when an editor renames
its new copy into place. A writer that never closes is still seen by the safety poll."""


class Inotify:
    """One inotify instance watching directories; `fd` becomes readable on any change."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c")
        self._libc = ctypes.CDLL(name, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd: int = fd

    def watch(self, directory: str) -> None:
        """Watch `directory` (editors save by writing a new file and renaming it over the old)."""
        result = self._libc.inotify_add_watch(self.fd, os.fsencode(directory), WATCH_MASK)
        if result < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory} failed")

    def drain(self) -> None:
        """Read and discard pending events."""
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.fd)


def open_inotify(paths: tuple[str, ...]) -> Inotify | None:
    """An inotify watching every path's directory, or None where inotify is unavailable."""
    try:
        notify = Inotify()
    except (OSError, AttributeError):
        return None
    for path in paths:
        p = Path(path)
        directory = p if p.is_dir() else p.parent
        try:
            notify.watch(str(directory))
        except OSError:
            notify.close()
            return None
    return notify
