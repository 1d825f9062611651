"""Results on disk: growing ``.npy`` columns, a journal of finished batches and a JSON
manifest, so that runs resume, and only the run they belong to.

Every column (attribution values, targets, predictions, labels …) is a plain
``.npy`` file that grows by one batch at a time: rows are appended after a
fixed-size header that is rewritten with the new row count once the rows are
written. ``manifest.json`` holds the run's fingerprint (the model's weights,
the method and its options, the data's shapes and length) and its columns; it
is written when the run starts and again when it is complete (atomically, by
rename). ``batches.jsonl`` gets one line per batch once the batch is in every
column: its rows, the hash of its inputs and the hash of the rows it wrote to
each column::

    {"start": 32, "rows": 16, "inputs": "<sha256>", "results": {"targets": "<sha256>", ...}}

The finished rows are those the journal records. A crash leaves at most rows
past them (and a half-written last line), which resuming cuts off; anything
else (columns shorter than the journal, rows that hash differently from what
was written, a manifest or a journal line that does not parse) is damage, and
resuming refuses it, as it refuses another run's folder, naming ``overwrite=True``.
``np.load(file, mmap_mode="r")`` reads every column without loading it.

A write that fails (a full disk, a read-only folder) raises a :class:`SaliencyError` naming the
file and how to go on: the finished batches stay, and calling again resumes after them; when the
first batch could not be written, the run's files are removed.
"""

from __future__ import annotations

import errno
import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Optional

import numpy as np

from ..errors import SaliencyError
from .fingerprint import digest

FORMAT = "saliency_widgets.attribute_dataset/2"
#: Formats of earlier versions: their results load, but they hold no record to resume against.
OLD_FORMATS = ("saliency_widgets.attribute_dataset/1",)
MANIFEST = "manifest.json"
JOURNAL = "batches.jsonl"
#: Bytes of every column's ``.npy`` header: room for any shape, a multiple of 64 as numpy prefers.
HEADER_BYTES = 256
OVERWRITE = "Pass overwrite=True to replace them with this run (or another path=); nothing there was changed"


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
        """Rows on disk: those the header counts and the file holds."""
        if not self.path.exists():
            raise SaliencyError(damaged(self.path.parent, f"{self.path.name} is missing"))
        size = self.path.stat().st_size
        try:
            with open(self.path, "rb") as f:
                np.lib.format.read_magic(f)
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                header = f.tell()
        except (ValueError, OSError, EOFError, SyntaxError) as err:
            raise SaliencyError(damaged(self.path.parent, f"{self.path.name} has no readable .npy header ({err})"))
        if header != HEADER_BYTES or fortran or dtype != self.dtype or tuple(shape[1:]) != self.sample_shape:
            raise SaliencyError(damaged(
                self.path.parent, f"{self.path.name} holds {dtype} rows of {tuple(shape[1:])}, not the "
                f"{self.dtype} rows of {self.sample_shape} the manifest names"))
        held = max(0, size - HEADER_BYTES) // max(1, self.row_bytes)
        return int(min(shape[0], held))

    def truncate(self, rows: int) -> None:
        """Keep the first ``rows`` rows and drop anything a stopped run wrote after them."""
        with open(self.path, "r+b") as f:
            f.truncate(HEADER_BYTES + rows * self.row_bytes)
            self._write_header(f, rows)

    def append(self, values: np.ndarray, rows_before: int) -> None:
        """Write ``values`` (a batch, already of this column's dtype) after the first
        ``rows_before`` rows, then the header that counts them; both reach the operating
        system before this returns."""
        if self._file is None:
            self._file = open(self.path, "r+b")
        self._file.seek(HEADER_BYTES + rows_before * self.row_bytes)
        self._file.write(memoryview(values).cast("B"))
        self._write_header(self._file, rows_before + len(values))  # its seek flushes the rows first
        self._file.flush()

    def read(self, rows: int) -> np.ndarray:
        """The first ``rows`` rows, memory-mapped read-only (whatever row count the header holds:
        a stopped run may have counted rows it did not finish writing)."""
        if rows == 0:
            return np.empty((0, *self.sample_shape), self.dtype)
        try:
            return np.memmap(self.path, self.dtype, "r", offset=HEADER_BYTES, shape=(rows, *self.sample_shape))
        except (ValueError, OSError) as err:
            raise SaliencyError(damaged(self.path.parent, f"{self.path.name} cannot be read ({err})")) from None

    def close(self) -> None:
        """Close the file; bytes a failed write left unflushed are past the journal, so a
        second failure to write them changes nothing."""
        if self._file is not None:
            _close_quietly(self._file)
            self._file = None

    def _write_header(self, f: Any, rows: int) -> None:
        text = repr({"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
                     "shape": (rows, *self.sample_shape)}).encode("latin1")
        body = HEADER_BYTES - 10
        if len(text) + 1 > body:
            raise SaliencyError(f"cannot store samples of shape {self.sample_shape}: the .npy header is too long")
        f.seek(0)
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", body) + text + b" " * (body - len(text) - 1) + b"\n")


class Store:
    """A run's folder: columns, the journal of finished batches, the manifest and the
    number of finished rows."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest
        self.columns = _columns(path, manifest)
        on_disk = {name: c.rows() for name, c in self.columns.items()}
        #: One record per finished batch (None for a run of an earlier version, which has none).
        self.records: Optional[list[dict[str, Any]]] = None
        self._journal_bytes = 0
        self._journal: Optional[BinaryIO] = None
        self._cut = False
        if manifest["format"] in OLD_FORMATS:
            #: Rows finished in every column.
            self.rows = min(on_disk.values(), default=0)
            return
        self.records, self._journal_bytes, torn = _read_journal(path)
        self.rows = sum(r["rows"] for r in self.records)
        for name, rows in on_disk.items():
            if rows < self.rows:
                raise SaliencyError(damaged(path, f"{self.columns[name].path.name} holds {rows} rows, but {JOURNAL} "
                                                  f"records {self.rows} finished (a truncated file)"))
        if self.complete:
            if torn or manifest.get("rows") != self.rows or manifest.get("batches") != len(self.records):
                raise SaliencyError(damaged(
                    path, f"the run is marked complete with {manifest.get('rows')} rows in {manifest.get('batches')} "
                          f"batches, but {JOURNAL} records {self.rows} rows in {len(self.records)}"))
            longer = sorted(self.columns[n].path.name for n, rows in on_disk.items() if rows != self.rows)
            if longer:
                raise SaliencyError(damaged(path, f"{', '.join(longer)} hold more than the run's {self.rows} rows"))

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
    def open(cls, path: Path, fingerprint: dict[str, Any], overwrite: bool = False) -> Optional["Store"]:
        """The unfinished or finished run of ``fingerprint`` under ``path``, its results checked
        against their hashes, or None when ``path`` holds no run yet (or held one and
        ``overwrite``: its files are deleted). Another run's files there, or damaged ones, give
        a :class:`SaliencyError` naming ``overwrite=True`` and are left as they are; rows past
        the finished ones are cut off at the first :meth:`append`."""
        if overwrite:
            remove(path)
            return None
        manifest = read_manifest(path)
        if manifest is None:
            return None
        if manifest["format"] in OLD_FORMATS:
            raise SaliencyError(
                f"{path} holds results of an earlier version of attribute_dataset, without the record of the "
                f"model's weights and of each batch that a run needs to resume. {OVERWRITE}"
            )
        if manifest.get("fingerprint") != fingerprint:
            raise SaliencyError(another_run(path, mismatch(manifest.get("fingerprint") or {}, fingerprint)))
        store = cls(path, manifest)
        store.verify()
        return store

    def verify(self) -> None:
        """A :class:`SaliencyError` unless every finished batch's rows hash as when written."""
        arrays = {name: column.read(self.rows) for name, column in self.columns.items()}
        for number, record in enumerate(self.records or []):
            stop = record["start"] + record["rows"]
            if set(record["results"]) != set(arrays):
                raise SaliencyError(damaged(self.path, f"{JOURNAL} line {number + 1} names the columns "
                                                       f"{sorted(record['results'])}, not {sorted(arrays)}"))
            for name, array in arrays.items():
                if digest([array[record["start"]:stop]]) != record["results"][name]:
                    rows = f"rows {record['start']}–{stop - 1} (batch {number})"
                    raise SaliencyError(damaged(self.path, f"{rows} of {self.columns[name].path.name} are not "
                                                           "those the run wrote (they hash differently)"))

    @classmethod
    def create(cls, path: Path, fingerprint: dict[str, Any], columns: dict[str, tuple[np.dtype, tuple]],
               info: dict[str, Any], overwrite: bool = False) -> "Store":
        """A new run with ``columns`` (name → dtype, sample shape); ``info`` is kept in the manifest.
        Files of the same names are refused, or replaced when ``overwrite``."""
        path.mkdir(parents=True, exist_ok=True)
        files = {name: f"{name}.npy" for name in columns}
        clashes = sorted(f for f in [*files.values(), JOURNAL] if (path / f).exists())
        if clashes and not overwrite:
            raise SaliencyError(
                f"{path} already holds {', '.join(clashes)} but no {MANIFEST}: files of something else; "
                "pass another path= (or overwrite=True to replace them)"
            )
        manifest = {
            "format": FORMAT, "fingerprint": fingerprint, "rows": 0, "batches": 0, "complete": False,
            "journal": JOURNAL,
            "columns": {name: {"file": files[name], "dtype": np.dtype(dtype).str, "shape": list(shape)}
                        for name, (dtype, shape) in columns.items()},
            **info,
        }
        try:
            for column in _columns(path, manifest).values():
                column.create()
            (path / JOURNAL).write_bytes(b"")
            store = cls(path, manifest)
            store._save()
        except (OSError, SaliencyError) as err:  # nothing finished: leave no half-made run behind
            for name in [*files.values(), JOURNAL]:
                (path / name).unlink(missing_ok=True)
            if isinstance(err, OSError):
                raise SaliencyError(not_written(Path(err.filename or path), err, 0)) from err
            raise
        return store

    # ------------------------------------------------------------- writing
    def append(self, batch_columns: dict[str, np.ndarray], inputs: str) -> None:
        """One batch's rows for every column (each header counts them once they are written),
        then its line in the journal: ``inputs`` (the hash of the batch's inputs) and the hash
        of the rows of each column."""
        if set(batch_columns) != set(self.columns):
            raise SaliencyError(
                f"a batch gave the columns {sorted(batch_columns)}, but this run stores {sorted(self.columns)}"
            )
        n = len(next(iter(batch_columns.values())))
        rows = {}
        for name, values in batch_columns.items():
            column = self.columns[name]
            if values.shape != (n, *column.sample_shape):
                raise SaliencyError(
                    f"a batch's {name} has shape {values.shape}, but this run stores rows of {column.sample_shape}"
                )
            rows[name] = np.ascontiguousarray(values, dtype=column.dtype)
        if not self._cut:  # what a stopped run left after its last finished batch
            for column in self.columns.values():
                with self._writing(column.path.name):
                    column.truncate(self.rows)
            with self._writing(JOURNAL):
                self._journal = open(self.path / JOURNAL, "r+b")
                self._journal.truncate(self._journal_bytes)
                self._journal.seek(self._journal_bytes)
            self._cut = True
        for name, values in rows.items():
            with self._writing(self.columns[name].path.name):
                self.columns[name].append(values, self.rows)
        record = {"start": self.rows, "rows": n, "inputs": inputs,
                  "results": {name: digest([rows[name]]) for name in sorted(rows)}}
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._writing(JOURNAL):
            self._journal.write(line)
            self._journal.flush()
        self._journal_bytes += len(line)
        self.records.append(record)
        self.rows += n

    def close(self) -> None:
        """Close the column and journal files (appending opens them again)."""
        for column in self.columns.values():
            column.close()
        if self._journal is not None:
            _close_quietly(self._journal)
            self._journal = None
            self._cut = False

    def record_passes(self, plan: dict[str, Any]) -> None:
        """Keep the run's pass plan (:meth:`~.plan.PassPlan.to_json`) in the manifest."""
        self.manifest["passes"] = plan
        self._save()

    def finish(self) -> None:
        """Mark the run complete in the manifest."""
        self.manifest.update(rows=self.rows, batches=len(self.records), complete=True)
        self._save()

    def _save(self) -> None:
        tmp = self.path / (MANIFEST + ".tmp")
        try:
            with self._writing(MANIFEST):
                tmp.write_text(json.dumps(self.manifest, indent=1))
                os.replace(tmp, self.path / MANIFEST)
        finally:
            tmp.unlink(missing_ok=True)

    @contextmanager
    def _writing(self, file: str) -> Iterator[None]:
        """An ``OSError`` while writing ``file`` as a :class:`SaliencyError` that says what is kept and how to go on."""
        try:
            yield
        except OSError as err:
            raise SaliencyError(not_written(self.path / file, err, self.rows)) from err


def _columns(path: Path, manifest: dict[str, Any]) -> dict[str, Column]:
    try:
        return {name: Column(path / spec["file"], np.dtype(spec["dtype"]), tuple(spec["shape"]))
                for name, spec in manifest["columns"].items()}
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise SaliencyError(damaged(path, f"{MANIFEST} names its columns wrongly ({err!r})")) from None


def _read_journal(path: Path) -> tuple[list[dict[str, Any]], int, bool]:
    """``(records, bytes they take, whether a half-written line follows)`` of ``path``'s journal."""
    file = path / JOURNAL
    if not file.exists():
        raise SaliencyError(damaged(path, f"{JOURNAL} is missing"))
    *lines, tail = file.read_bytes().split(b"\n")
    records, size = [], 0
    for number, line in enumerate(lines):
        try:
            record = json.loads(line)
            valid = (isinstance(record, dict) and isinstance(record.get("start"), int)
                     and isinstance(record.get("rows"), int) and record["rows"] > 0
                     and isinstance(record.get("inputs"), str) and isinstance(record.get("results"), dict))
        except ValueError:
            valid = False
        if not valid:
            raise SaliencyError(damaged(path, f"{JOURNAL} line {number + 1} is not a batch record"))
        expected = sum(r["rows"] for r in records)
        if record["start"] != expected:
            raise SaliencyError(damaged(path, f"{JOURNAL} line {number + 1} starts at row {record['start']}, "
                                              f"not {expected} where the batch before it ended"))
        records.append(record)
        size += len(line) + 1
    return records, size, bool(tail)


def read_manifest(path: Path) -> Optional[dict[str, Any]]:
    """The manifest under ``path``, None if there is none, a SaliencyError if it is not ours."""
    file = path / MANIFEST
    if not file.exists():
        return None
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        raise SaliencyError(damaged(path, f"{MANIFEST} cannot be read ({err})")) from None
    if not isinstance(manifest, dict) or manifest.get("format") not in (FORMAT, *OLD_FORMATS):
        raise SaliencyError(f"{file} is not an attribute_dataset manifest. {OVERWRITE}")
    problem = _manifest_problem(manifest)
    if problem:
        raise SaliencyError(damaged(path, f"{MANIFEST} {problem}"))
    return manifest


#: What every manifest holds, with its JSON type.
_MANIFEST_KEYS = {"fingerprint": dict, "rows": int, "batches": int, "complete": bool, "columns": dict,
                  "framework": str, "method": str, "structure": list, "output_shape": list}


def _manifest_problem(manifest: dict[str, Any]) -> Optional[str]:
    """What is missing or wrong in ``manifest`` (keys and their types, the pass plan), or None."""
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    if missing:
        return f"lacks {', '.join(map(repr, missing))}"
    wrong = [f"{key!r} is a {type(manifest[key]).__name__}, not a {kind.__name__}"
             for key, kind in _MANIFEST_KEYS.items() if not isinstance(manifest[key], kind)]
    if wrong:
        return "; ".join(wrong)
    passes = manifest.get("passes")
    if passes is not None and not (
            isinstance(passes, dict) and set(passes) == {"size", "layout", "from_row"}
            and isinstance(passes["size"], int) and passes["size"] > 0 and isinstance(passes["from_row"], int)
            and (passes["layout"] is None or isinstance(passes["layout"], str))):
        return f"has passes {passes!r}, not {{\"size\": copies per pass, \"layout\": …, \"from_row\": …}}"
    return None


def remove(path: Path) -> None:
    """Delete the run under ``path``: its manifest first (the folder then holds no run), then
    its journal and the columns the manifest names. Other files stay."""
    manifest = None
    try:
        manifest = read_manifest(path)
    except SaliencyError:
        pass
    files = [MANIFEST, JOURNAL]
    if manifest is not None and isinstance(manifest.get("columns"), dict):
        files += [spec["file"] for spec in manifest["columns"].values()
                  if isinstance(spec, dict) and isinstance(spec.get("file"), str) and "/" not in spec["file"]
                  and "\\" not in spec["file"]]
    for name in files:
        (path / name).unlink(missing_ok=True)


def not_written(file: Path, err: OSError, finished: int) -> str:
    """The message for a write to ``file`` that failed with ``err`` after ``finished`` rows."""
    fix = _FIXES.get(err.errno, "remove the cause")
    kept = (f"The {finished} rows finished before are kept in {file.parent}: {fix}, then call attribute_dataset "
            "again with the same arguments to resume after them" if finished else
            f"Nothing had finished, and no file of the run is left in {file.parent}: {fix}, then call "
            "attribute_dataset again")
    return (f"could not write {file}: {err.strerror or err} (errno {err.errno}). {kept} "
            "(or pass another path=, or overwrite=True to start again)")


def _close_quietly(file: BinaryIO) -> None:
    """Close ``file``; a flush that fails again (the disk still full) is ignored: those bytes
    lie past the journal's finished rows, which the next run cuts off anyway."""
    try:
        file.close()
    except OSError:
        pass


def another_run(path: Path, details: str) -> str:
    """The message refusing ``path`` because it holds another run's results."""
    return f"{path} holds the results of another run ({details}). {OVERWRITE}"


def damaged(path: Path, details: str) -> str:
    """The message refusing ``path`` because its files are damaged."""
    return f"{path} holds damaged results: {details}. {OVERWRITE}"


#: How to recover from a failed write, by errno.
_FIXES = {
    errno.ENOSPC: "free disk space", errno.EDQUOT: "free space within your disk quota",
    errno.EACCES: "make the folder writable", errno.EPERM: "make the folder writable",
    errno.EROFS: "use a writable folder", errno.EIO: "check the disk",
}

_WHAT = {
    "weights": "the model's weights", "model": "the model's class", "method": "method", "target": "target",
    "options": "the method's options", "batch_size": "batch_size", "samples": "the number of samples",
    "structure": "the data's structure", "entries": "the data's sample shapes and dtypes",
    "labels": "whether the data has labels",
}


def mismatch(theirs: dict[str, Any], ours: dict[str, Any]) -> str:
    """What differs between two fingerprints, in words."""
    differ = [k for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)]
    return "; ".join(f"{_WHAT.get(k, k)}: {_short(theirs.get(k))} there, {_short(ours.get(k))} now" for k in differ)


def _short(value: Any) -> str:
    if isinstance(value, dict) and "sha256" in value:
        return f"sha256 {str(value['sha256'])[:12]}…"
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
