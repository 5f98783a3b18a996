"""Durable files, one definition for every part of the index: flush to disk, hash, write
atomically (a `.tmp` beside the target, fsync'ed, renamed; then the directory fsync'ed)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory (its new entries), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Flush every file under `root`, then the directories themselves."""
    for dirpath, _, names in os.walk(root):
        for name in names:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath))


def file_sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_durably(path: Path, data: bytes) -> None:
    """`data` at `path`, all or nothing: a crash leaves the old file (or none), never half."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
