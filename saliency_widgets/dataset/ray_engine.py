"""``engine="ray"``: the same :class:`~.job.BatchJob` as a Ray Data ``map_batches`` over shards.

The driver reads the data batch by batch (exactly as the local engine does)
and puts each batch into Ray's object store; a Ray Data dataset of batch
references is mapped by a pool of actors, each of which unpickles the job, the
model included, once (its layer options by name, :meth:`~.job.BatchJob.by_name`). Results come back in order (``preserve_order``) and the
driver writes them to the same files as the local engine.

Ray joins the cluster that ``ray.init(address=...)`` connected to, or starts a
local one when none is running.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..errors import SaliencyError
from .batches import Batch
from .job import BatchJob, BatchResult


class _Worker:
    """The ``map_batches`` UDF: one actor holds one copy of the job (and its model).

    It gets batch numbers and fetches the batches from the object store; each result
    goes back pickled (a binary column Arrow stores as it is).
    """

    def __init__(self, job: BatchJob, batches: list[Any]) -> None:
        self.job = job
        self.batches = batches

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import ray

        results = [pickle.dumps(self.job(ray.get(self.batches[int(i)])), protocol=5) for i in rows["id"]]
        return {"id": rows["id"], "result": np.array(results, dtype=object)}


def run(job: BatchJob, batches: Iterator[Batch], write: Callable[[BatchResult], None],
        options: Optional[dict[str, Any]] = None) -> None:
    """Attribute ``batches`` on Ray and ``write`` each result, in order.

    ``options`` go to ``Dataset.map_batches`` (e.g. ``num_gpus=1``, or ``compute=`` an
    ``ActorPoolStrategy``); by default one single-CPU actor per CPU of the cluster.
    """
    ray = _import_ray()
    if not ray.is_initialized():
        ray.init()
    refs = [ray.put(batch) for batch in batches]
    if not refs:
        return
    workers = max(1, min(int(ray.cluster_resources().get("CPU", 1)), len(refs)))
    settings = {"compute": ray.data.ActorPoolStrategy(size=workers), "num_cpus": 1, **(options or {})}
    # In order, and no progress bars of Ray's own beside ours; the caller's settings come back after.
    context = ray.data.DataContext.get_current()
    saved = context.execution_options.preserve_order, context.enable_progress_bars
    context.execution_options.preserve_order, context.enable_progress_bars = True, False
    try:
        # from_items: the batch numbers need no read task, so every CPU can hold an actor.
        numbers = ray.data.from_items([{"id": i} for i in range(len(refs))], override_num_blocks=len(refs))
        mapped = numbers.map_batches(_Worker, fn_constructor_kwargs={"job": job.by_name(), "batches": refs},
                                     batch_size=1, batch_format="numpy", **settings)
        for expected, row in enumerate(mapped.iter_rows()):
            if int(row["id"]) != expected:
                raise SaliencyError(f"Ray returned batch {row['id']} where batch {expected} was due")
            write(pickle.loads(row["result"]))
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise SaliencyError(
            "engine='ray' needs Ray Data: pip install 'saliency-widgets[ray]' (or 'ray[data]')"
        ) from None
    return ray
