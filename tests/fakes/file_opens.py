"""Counting the files opened under a directory tree (Linux inotify), to see what a run reads."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from pathlib import Path

_IN_OPEN = 0x00000020
_IN_ISDIR = 0x40000000
_IN_NONBLOCK = os.O_NONBLOCK
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, len bytes)


class FileOpens:
    """The files opened under `root` between entering and leaving (directories excluded:
    listing a directory opens it). Watches the directories that exist on entry, as the
    kernel does for whoever opens a file: no code of ours is replaced.

        with FileOpens(photo_dir) as opens:
            run()
        assert opens.names == []
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.names: list[str] = []

    def __enter__(self) -> FileOpens:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = libc.inotify_init1(_IN_NONBLOCK)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        for directory in [self.root, *(p for p in self.root.rglob("*") if p.is_dir())]:
            if libc.inotify_add_watch(self._fd, os.fsencode(directory), _IN_OPEN) < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
        return self

    def __exit__(self, *exc) -> None:
        try:
            while True:
                try:
                    buffer = os.read(self._fd, 65536)
                except BlockingIOError:
                    break
                i = 0
                while i < len(buffer):
                    _, mask, _, length = _EVENT.unpack_from(buffer, i)
                    name = buffer[i + _EVENT.size : i + _EVENT.size + length].rstrip(b"\0")
                    i += _EVENT.size + length
                    if mask & _IN_OPEN and not mask & _IN_ISDIR:
                        self.names.append(os.fsdecode(name))
        finally:
            os.close(self._fd)
