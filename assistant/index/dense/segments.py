"""The segment files of the FAISS dense store (`faiss.py`): each one opened once and its size
checked against the state, verified (sha256), read (a `.npy` array, the members of a `.npz`, or
a few rows of one in place), and written durably. No FAISS here: a FAISS segment is written by a
function the store passes, and read back from the path `mapped_path` gives.

A state entry is `{"file", "size", "sha256", "rows"}`. The descriptors opened stay open until
`close` / `close_all`: what was checked stays readable even after a prune deletes its name.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import struct
import weakref
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import REBUILD_HINT, IndexCorruptError
from ..files import file_sha256, fsync_path, write_durably

__all__ = ["Segments", "npy_bytes"]

_NAME = re.compile(r"^(base-\d+\.(faiss|ids\.npy)|delta-\d+\.npz|tomb-\d+\.npy)$")
_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _close_all(fds: dict[str, int]) -> None:
    while fds:
        os.close(fds.popitem()[1])


class Segments:
    """The segment files of one store directory, opened as a state lists them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fds: dict[str, int] = {}  # file name -> descriptor
        weakref.finalize(self, _close_all, self._fds)

    def open(self, entry: dict[str, Any]) -> int:
        """The descriptor of a listed file, opened now (once) and its size checked."""
        name = str(entry["file"])
        if name in self._fds:
            return self._fds[name]
        if not _NAME.match(name) or not isinstance(entry["sha256"], str) or int(entry["rows"]) < 0:
            raise ValueError(f"entrée inattendue {entry!r}")
        path = self.root / name
        try:
            fd = self._fds[name] = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise IndexCorruptError(f"{path} est introuvable. {REBUILD_HINT}") from None
        except OSError as exc:
            raise IndexCorruptError(f"{path} est illisible ({exc.strerror}). {REBUILD_HINT}"
                                    ) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != int(entry["size"]):
            raise IndexCorruptError(f"{path} est endommagé (taille inattendue). {REBUILD_HINT}")
        return fd

    def file(self, entry: dict[str, Any]) -> io.BufferedReader:
        """A segment as opened, read from its start (closing it leaves the descriptor open)."""
        f = open(self.open(entry), "rb", closefd=False)  # noqa: SIM115
        f.seek(0)
        return f

    def mapped_path(self, entry: dict[str, Any]) -> str:
        """A path naming the file as opened (for a reader that wants a path, such as a
        memory-mapped FAISS read): its descriptor's, where the system has them."""
        fd = self.open(entry)
        proc = f"/proc/self/fd/{fd}"
        return proc if os.path.exists(proc) else str(self.root / entry["file"])

    def verify(self, entry: dict[str, Any]) -> None:
        with self.file(entry) as f:
            if hashlib.file_digest(f, "sha256").hexdigest() != entry["sha256"]:
                raise IndexCorruptError(f"{self.root / entry['file']} est endommagé (empreinte "
                                        f"inattendue). {REBUILD_HINT}")

    def arrays(self, entry: dict[str, Any], *names: str, verify: bool = True
               ) -> list[np.ndarray]:
        """Arrays of a `.npz` segment (only the members named are read, each checked by the
        zip's CRC) or the array of a `.npy` one; the file's sha256 verified first unless
        `verify` is False."""
        if verify:
            self.verify(entry)
        path = self.root / entry["file"]
        try:
            with self.file(entry) as f:
                if path.suffix == ".npy":
                    return [np.load(f, allow_pickle=False)]
                with np.load(f, allow_pickle=False) as data:
                    return [data[name] for name in names]
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise IndexCorruptError(f"{path} est illisible ({exc}). {REBUILD_HINT}") from None

    def rows(self, entry: dict[str, Any], name: str, positions: np.ndarray) -> np.ndarray:
        """Rows `positions` of the 2-D member `name` of a `.npz` segment, read in place (a
        stored member: `np.savez`), neither the rest of it nor its CRC read; a compressed
        member is read whole."""
        path = self.root / entry["file"]
        try:
            with self.file(entry) as f:
                with zipfile.ZipFile(f) as archive:
                    info = archive.getinfo(f"{name}.npy")
                if info.compress_type != zipfile.ZIP_STORED:
                    return self.arrays(entry, name, verify=False)[0][positions]
                f.seek(info.header_offset)
                local = f.read(_LOCAL_HEADER)
                if local[:4] != b"PK\x03\x04":
                    raise ValueError("en-tête zip inattendu")
                start = info.header_offset + _LOCAL_HEADER + sum(struct.unpack("<HH",
                                                                               local[26:30]))
                f.seek(start)
                version = np.lib.format.read_magic(f)
                shape, fortran, dtype = (np.lib.format.read_array_header_1_0(f)
                                         if version == (1, 0)
                                         else np.lib.format.read_array_header_2_0(f))
                data = f.tell()
                row = int(np.prod(shape[1:])) * dtype.itemsize if len(shape) == 2 else 0
                if (row == 0 or fortran or dtype.hasobject
                        or data - start + shape[0] * row != info.file_size
                        or (len(positions) and not 0 <= int(np.min(positions))
                            <= int(np.max(positions)) < shape[0])):
                    raise ValueError(f"membre {name} de forme inattendue")
                out = np.empty((len(positions), shape[1]), dtype=dtype)
                for i, position in enumerate(positions.tolist()):
                    f.seek(data + position * row)
                    out[i] = np.frombuffer(f.read(row), dtype=dtype)
                return out
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise IndexCorruptError(f"{path} est illisible ({exc}). {REBUILD_HINT}") from None

    def write(self, name: str, rows: int, payload: bytes | Callable[[Path], None]
              ) -> dict[str, Any]:
        """A new segment, from bytes or a function writing it at a path, written as `.tmp`,
        fsync'ed and renamed (the caller fsyncs the directory once): its state entry."""
        final = self.root / name
        if isinstance(payload, bytes):
            write_durably(final, payload)
        else:
            tmp = final.with_name(f"{name}.tmp")
            payload(tmp)
            fsync_path(tmp)
            os.replace(tmp, final)
        return {"file": name, "size": final.stat().st_size, "sha256": file_sha256(final),
                "rows": rows}

    def close(self, name: str) -> None:
        fd = self._fds.pop(name, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        _close_all(self._fds)
