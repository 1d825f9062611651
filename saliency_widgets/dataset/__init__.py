"""Attribution of whole datasets, streamed to disk and resumable (DESIGN §3.7).

- :mod:`.batches`: any ``data`` → numpy batches of one structure;
- :mod:`.job`: the per-batch function both engines run;
- :mod:`.store`: growing ``.npy`` columns, the journal of finished batches and the JSON manifest;
- :mod:`.fingerprint`: the hashes that identify a run (weights, options, each batch's inputs and results);
- :mod:`.ray_engine`: ``engine="ray"`` (Ray Data ``map_batches``);
- :mod:`.result` / :mod:`.figure`: :class:`DatasetAttribution`, class means and their figure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .. import progress as progress_hooks
from ..backends import get_backend
from ..backends.base import to_numpy
from ..errors import SaliencyError
from .batches import Batch, BatchSource, BatchSpec, input_digest
from .fingerprint import describe, weights_fingerprint
from .job import LABEL_TARGET, BatchJob, BatchResult
from .plan import PassPlan
from .result import DatasetAttribution
from .store import Store, another_run
from ..frameworks import accepts_framework

ENGINES = ("local", "ray")

__all__ = ["ENGINES", "DatasetAttribution", "attribute_dataset"]


@accepts_framework
def attribute_dataset(model: Any, data: Any, target: Any = None, *, method: str = "gradient",
                      path: Union[str, Path, None] = None, batch_size: int = 64, engine: str = "local",
                      labels: Any = None, progress: bool = True, engine_options: Optional[dict[str, Any]] = None,
                      overwrite: bool = False, **kw: Any) -> DatasetAttribution:
    """Attribute every sample of ``data`` and stream the results into ``path``.

    ``data``: an array (or a dict of arrays, a structured ``x`` such as a tokenizer's
    ``input_ids`` and ``attention_mask``) with ``labels=`` for its ``y``; a dataset of
    samples (``len`` and ``[i]``, e.g. a torch ``Dataset`` of dict rows), batched here by
    ``batch_size``; or an iterable of batches ``x`` or ``(x, y)`` (a torch ``DataLoader``, a
    batched ``tf.data.Dataset``, a generator, a list of dict batches), used as they come.
    A tuple of two whole arrays is refused: a tuple of two is ``(x, y)``, as Keras reads it,
    so ``(x, y)`` goes as ``x, labels=y``, two inputs of one model as a dict, and batches as
    a list (a list of two arrays is two batches when they have the same sample shape and dtype).
    The data must come in the same order every time it is read, so that a run resumes.

    ``target``: as in :func:`~saliency_widgets.saliency` (``None`` = each sample's arg-max,
    an int, a tuple into a multi-dimensional output), one per sample of the whole dataset
    (a list or array), or ``"label"``: each sample's own label ``y``. ``kw`` (``output``,
    ``head``, ``layer``, ``fixed``, ``n_samples``, ``baseline`` …) go to
    :func:`~saliency_widgets.attribute` for every batch; with ``layer=`` (e.g. the embedding
    layer, for token ids) ``values`` is one array ``(N, *layer_output_shape)``. The passes of
    SmoothGrad and integrated gradients (copies per pass, memory layout) are searched on the
    first batches, then fixed for the rest of the run (``"passes"`` in the manifest), so that a
    resumed run, and the Ray workers, compute those batches bit for bit as an uninterrupted
    local run does.

    ``path``: a folder (a new temporary one when ``None``). Each finished batch is written
    there at once (``.npy`` files, a line in ``batches.jsonl`` and ``manifest.json``); calling
    again with the same arguments and ``path`` resumes after the last finished batch, or just
    opens the results when the run is complete. The manifest records what identifies the run:
    a hash of the model's weights (every parameter and buffer), the method and its options,
    ``batch_size`` and the data's shapes and length; the journal, the hash of every finished
    batch's inputs and of the rows it wrote. Resuming checks them all (reading the finished
    batches of the data again, and the results on disk) and refuses, naming what differs, a
    folder that holds another run (other weights, options or data) or damaged files (a
    truncated column, rows changed since they were written, a manifest that does not parse);
    what is there is left as it is. ``overwrite=True`` deletes that run's files and starts
    again. A write that fails (a full disk) stops the run with a :class:`SaliencyError` naming
    the file; the finished batches stay, and calling again resumes after them. Memory stays
    bounded by one batch plus the engine's working memory (``sw.config.chunk_budget_bytes``),
    whatever the dataset's size.

    ``engine``: ``"local"`` (this process) or ``"ray"`` (Ray Data ``map_batches`` on the
    cluster ``ray.init`` connected to; ``engine_options`` go to ``map_batches``, e.g.
    ``{"compute": ray.data.ActorPoolStrategy(size=8), "num_gpus": 1}``). ``progress``: a ``tqdm`` bar with throughput.
    """
    if engine not in ENGINES:
        raise SaliencyError(f"unknown engine {engine!r}; choose one of {', '.join(map(repr, ENGINES))}")
    source = BatchSource(data, batch_size, labels)
    first, read = source.open()
    spec = BatchSpec.of(source.structure, first)
    per_sample = _per_sample_targets(target)
    fingerprint = {
        **spec.fingerprint(), "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "weights": weights_fingerprint(model), "method": method, "target": describe(target, model),
        "options": describe(kw, model), "batch_size": source.batch_size, "samples": source.total,
    }
    root = Path(path) if path is not None else Path(tempfile.mkdtemp(prefix="sw-dataset-"))
    store = Store.open(root, fingerprint, overwrite=overwrite)
    batches = _checked(read(0), spec, per_sample)
    if store is not None:
        batches = _resumed(batches, store)
        if store.complete:
            for batch in batches:
                raise SaliencyError(another_run(
                    root, f"the data goes on after row {store.rows - 1}, where the run there ended"))
            return DatasetAttribution(root)
    job = BatchJob(model, source.structure, target, method, kw,
                   passes=None if store is None else PassPlan.from_json(store.manifest.get("passes")),
                   framework=get_backend(model).framework)
    writer = _Writer(root, fingerprint, store, {
        "framework": get_backend(model).framework, "method": method,
        "structure": [source.structure.kind, list(source.structure.keys)],
    }, overwrite)
    try:
        # the run's own bar shows its progress; a cancelled run (saliency_widgets.progress) stops at its next pass
        with _progress_bar(progress, source.total, writer.rows) as bar, progress_hooks.quiet(), \
                progress_hooks.stage(source.total or 0, "attribute_dataset"):
            writer.bar = bar
            if engine == "local":
                for batch in batches:
                    writer(job(batch))
            else:
                from . import ray_engine

                if job.passes is None:  # batches run here while the passes are searched; the workers get the plan
                    for batch in batches:
                        writer(job(batch))
                        if not job.searching:
                            break
                ray_engine.run(job, batches, writer, engine_options)
        writer.finish()
    finally:
        writer.close()
    return DatasetAttribution(root)


class _Writer:
    """Appends each batch's result to the store, creating the store from the first result."""

    def __init__(self, root: Path, fingerprint: dict[str, Any], store: Optional[Store], info: dict[str, Any],
                 overwrite: bool = False) -> None:
        self.root, self.fingerprint, self.store, self.info = root, fingerprint, store, info
        self.overwrite = overwrite
        self.bar: Any = None

    @property
    def rows(self) -> int:
        return 0 if self.store is None else self.store.rows

    def __call__(self, result: BatchResult) -> None:
        if self.store is None:
            columns = {name: (v.dtype, v.shape[1:]) for name, v in result.columns.items()}
            info = {**self.info, "output_shape": list(result.output_shape), "passes": None}
            self.store = Store.create(self.root, self.fingerprint, columns, info, self.overwrite)
        if result.start != self.store.rows:
            raise SaliencyError(f"a batch starting at row {result.start} arrived after {self.store.rows} rows")
        self.store.append(result.columns, result.inputs)
        if result.passes is not None and self.store.manifest.get("passes") is None:
            self.store.record_passes(result.passes)
        self.bar.update(len(result))
        progress_hooks.step(len(result))

    def finish(self) -> None:
        if self.store is None:
            raise SaliencyError("data yielded no samples to attribute")
        self.store.finish()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _checked(batches: Iterator[Batch], spec: BatchSpec, per_sample: Optional[np.ndarray]) -> Iterator[Batch]:
    """``batches`` checked against the first batch's spec, with their slice of per-sample targets
    and the hash of their inputs."""
    for number, batch in enumerate(batches):
        spec.check(batch, number)
        batch.digest = input_digest(batch)
        if per_sample is not None:
            batch.target = per_sample[batch.start:batch.start + len(batch)]
            if len(batch.target) != len(batch):
                raise SaliencyError(
                    f"target has {len(per_sample)} entries, but the data has more samples; pass one per sample"
                )
        yield batch


def _per_sample_targets(target: Any) -> Optional[np.ndarray]:
    """One target per sample of the dataset (a list or an array), else None."""
    if isinstance(target, (list, np.ndarray)) or (hasattr(target, "shape") and hasattr(target, "dtype")):
        return to_numpy(target)
    if isinstance(target, str) and target != LABEL_TARGET:
        raise SaliencyError(f"target must be None, an int, a tuple, one per sample or {LABEL_TARGET!r}; got {target!r}")
    return None


def _resumed(batches: Iterator[Batch], store: Store) -> Iterator[Batch]:
    """The batches after ``store``'s finished ones, once the data's finished batches were checked
    against the journal: the same rows, hashing as they did."""
    records = list(store.records or [])  # the store appends the new batches' records to its own list
    number = 0
    for batch in batches:
        if number == len(records):
            yield batch
            continue
        record = records[number]
        rows = f"rows {record['start']}–{record['start'] + record['rows'] - 1}"
        if batch.start != record["start"] or len(batch) != record["rows"]:
            raise SaliencyError(another_run(
                store.path, f"the data's batch {number} has rows {batch.start}–{batch.start + len(batch) - 1}, but "
                            f"the run there attributed {rows} as its batch {number}"))
        if batch.digest != record["inputs"]:
            raise SaliencyError(another_run(
                store.path, f"the data's batch {number} ({rows}) is not the one attributed there: "
                            "its inputs hash differently"))
        number += 1
    if number < len(records):
        raise SaliencyError(another_run(
            store.path, f"the data ends after {number} batches, but the run there had finished {len(records)}"))


def _progress_bar(enabled: bool, total: Optional[int], done: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=done, unit="sample", desc="attribute_dataset",
                disable=not enabled, smoothing=0.1)

