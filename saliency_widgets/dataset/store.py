"""Results on disk: growing ``.npy`` columns and a JSON manifest, so that runs resume.

Every column (attribution values, targets, predictions, labels …) is a plain
``.npy`` file that grows by one batch at a time: rows are appended after a
fixed-size header that is rewritten with the new row count once the rows are
written. The finished rows are the fewest any header counts, so whatever a
crash leaves behind (a batch written to some columns only, rows past a header)
names a prefix of rows that is complete in every column; resuming cuts the
rest off. ``manifest.json`` holds the run's fingerprint and columns, written
when the run starts and again when it is complete (atomically, by rename).
``np.load(file, mmap_mode="r")`` reads every column without loading it.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any, BinaryIO, Optional

import numpy as np

from ..errors import SaliencyError

FORMAT = "saliency_widgets.attribute_dataset/1"
MANIFEST = "manifest.json"
#: Bytes of every column's ``.npy`` header: room for any shape, a multiple of 64 as numpy prefers.
HEADER_BYTES = 256


class Column:
    """One ``.npy`` file of ``(rows, *sample_shape)`` that grows at the end."""

    def __init__(self, path: Path, dtype: np.dtype, sample_shape: tuple[int, ...]) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self.sample_shape = tuple(sample_shape)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.sample_shape, dtype=np.int64))
        self._file: Optional[BinaryIO] = None

    def create(self) -> None:
        """A new file with no rows."""
        with open(self.path, "wb") as f:
            self._write_header(f, 0)

    def rows(self) -> int:
        """Rows finished on disk: those the header counts and the file holds."""
        if not self.path.exists():
            raise SaliencyError(
                f"{self.path} is missing; delete the folder (or pass another path=) to start again"
            )
        with open(self.path, "rb") as f:
            np.lib.format.read_magic(f)
            shape = np.lib.format.read_array_header_1_0(f)[0]
        held = (self.path.stat().st_size - HEADER_BYTES) // max(1, self.row_bytes)
        return int(min(shape[0], held))

    def truncate(self, rows: int) -> None:
        """Keep the first ``rows`` rows and drop anything a stopped run wrote after them."""
        with open(self.path, "r+b") as f:
            f.truncate(HEADER_BYTES + rows * self.row_bytes)
            self._write_header(f, rows)

    def append(self, values: np.ndarray, rows_before: int) -> None:
        """Write ``values`` (a batch) after the first ``rows_before`` rows, then the header that
        counts them; both reach the operating system before this returns."""
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if self._file is None:
            self._file = open(self.path, "r+b")
        self._file.seek(HEADER_BYTES + rows_before * self.row_bytes)
        self._file.write(memoryview(values).cast("B"))
        self._write_header(self._file, rows_before + len(values))  # its seek flushes the rows first
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self, rows: int) -> np.memmap:
        """The first ``rows`` rows, memory-mapped read-only."""
        return np.load(self.path, mmap_mode="r")[:rows]

    def _write_header(self, f: Any, rows: int) -> None:
        text = repr({"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                     "shape": (rows, *self.sample_shape)}).encode("latin1")
        body = HEADER_BYTES - 10
        if len(text) + 1 > body:
            raise SaliencyError(f"cannot store samples of shape {self.sample_shape}: the .npy header is too long")
        f.seek(0)
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + text + b" " * (body - len(text) - 1) + b"\n")


class Store:
    """A run's folder: columns, the manifest and the number of finished rows."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.columns = _columns(path, manifest)
        #: Rows finished in every column.
        self.rows = min((c.rows() for c in self.columns.values()), default=0)

    @property
    def complete(self) -> bool:
        return bool(self.manifest["complete"])

    # ------------------------------------------------------------- opening
    @classmethod
    def load(cls, path: Path) -> "Store":
        """The run saved under ``path``, or a :class:`SaliencyError` if there is none."""
        manifest = read_manifest(path)
        if manifest is None:
            raise SaliencyError(f"{path} holds no attribute_dataset results ({MANIFEST} is missing)")
        return cls(path, manifest)

    @classmethod
    def open(cls, path: Path, fingerprint: dict[str, Any]) -> Optional["Store"]:
        """The unfinished or finished run of ``fingerprint`` under ``path`` (columns cut back to
        the finished rows), or None when ``path`` holds no run yet. A different run's files there
        give a :class:`SaliencyError` and are left as they are."""
        manifest = read_manifest(path)
        if manifest is None:
            return None
        if manifest.get("fingerprint") != fingerprint:
            raise SaliencyError(_mismatch(path, manifest.get("fingerprint") or {}, fingerprint))
        store = cls(path, manifest)
        if not store.complete:
            for column in store.columns.values():
                column.truncate(store.rows)
        return store

    @classmethod
    def create(cls, path: Path, fingerprint: dict[str, Any], columns: dict[str, tuple[np.dtype, tuple]],
               info: dict[str, Any]) -> "Store":
        """A new run with ``columns`` (name → dtype, sample shape); ``info`` is kept in the manifest."""
        path.mkdir(parents=True, exist_ok=True)
        files = {name: f"{name}.npy" for name in columns}
        clashes = sorted(f for f in files.values() if (path / f).exists())
        if clashes:
            raise SaliencyError(
                f"{path} already holds {', '.join(clashes)} but no {MANIFEST}: files of something else; "
                "pass another path= (or delete them)"
            )
        manifest = {
            "format": FORMAT, "fingerprint": fingerprint, "rows": 0, "complete": False,
            "columns": {name: {"file": files[name], "dtype": np.dtype(dtype).str, "shape": list(shape)}
                        for name, (dtype, shape) in columns.items()},
            **info,
        }
        for column in _columns(path, manifest).values():
            column.create()
        store = cls(path, manifest)
        store._save()
        return store

    # ------------------------------------------------------------- writing
    def append(self, batch_columns: dict[str, np.ndarray]) -> None:
        """One batch's rows for every column (each header counts them once they are written)."""
        if set(batch_columns) != set(self.columns):
            raise SaliencyError(
                f"a batch gave the columns {sorted(batch_columns)}, but this run stores {sorted(self.columns)}"
            )
        n = len(next(iter(batch_columns.values())))
        for name, values in batch_columns.items():
            column = self.columns[name]
            if values.shape != (n, *column.sample_shape):
                raise SaliencyError(
                    f"a batch's {name} has shape {values.shape}, but this run stores rows of {column.sample_shape}"
                )
        for name, values in batch_columns.items():
            self.columns[name].append(values, self.rows)
        self.rows += n

    def close(self) -> None:
        """Close the column files (appending opens them again)."""
        for column in self.columns.values():
            column.close()

    def finish(self) -> None:
        """Mark the run complete in the manifest."""
        self.manifest.update(rows=self.rows, complete=True)
        self._save()

    def _save(self) -> None:
        tmp = self.path / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(self.manifest, indent=1))
        os.replace(tmp, self.path / MANIFEST)


def _columns(path: Path, manifest: dict[str, Any]) -> dict[str, Column]:
    return {name: Column(path / spec["file"], np.dtype(spec["dtype"]), tuple(spec["shape"]))
            for name, spec in manifest["columns"].items()}


def read_manifest(path: Path) -> Optional[dict[str, Any]]:
    """The manifest under ``path``, None if there is none, a SaliencyError if it is not ours."""
    file = path / MANIFEST
    if not file.exists():
        return None
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise SaliencyError(f"{file} cannot be read ({err}); pass another path=") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise SaliencyError(f"{file} is not an attribute_dataset manifest; pass another path=")
    return manifest


def _mismatch(path: Path, theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    differ = [k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    details = "; ".join(f"{k}: {_short(theirs.get(k))} there, {_short(ours.get(k))} now" for k in differ)
    return (f"{path} holds the results of another run ({details}). Pass a new path= to start this one, "
            "or delete that folder; its files are left untouched")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
