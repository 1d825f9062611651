"""``engine="ray"``: the same :class:`~.job.BatchJob` as a Ray Data ``map_batches`` over shards.

The driver reads the data batch by batch (exactly as the local engine does)
and puts each batch into Ray's object store; a Ray Data dataset of batch
references is mapped by a pool of actors, each of which unpickles the job, the
model included, once. Results come back in order (``preserve_order``) and the
driver writes them to the same files as the local engine.

Ray joins the cluster that ``ray.init(address=...)`` connected to, or starts a
local one when none is running.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import numpy as np

from ..errors import SaliencyError
from .batches import Batch
from .job import BatchJob, BatchResult


class _Worker:
    """The ``map_batches`` UDF: one actor holds one copy of the job (and its model)."""

    def __init__(self, job: Any) -> None:
        import ray

        self.job = ray.get(job) if isinstance(job, ray.ObjectRef) else job

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import ray

        results = np.empty(len(rows["batch"]), dtype=object)
        results[:] = [self.job(ray.get(ref)) for ref in rows["batch"]]
        return {"index": rows["index"], "result": results}


def run(job: BatchJob, batches: Iterator[Batch], write: Callable[[BatchResult], None],
        options: Optional[dict[str, Any]] = None) -> None:
    """Attribute ``batches`` on Ray and ``write`` each result, in order.

    ``options`` go to ``Dataset.map_batches`` (e.g. ``concurrency=4``, ``num_gpus=1``);
    by default one single-CPU actor per CPU of the cluster.
    """
    ray = _import_ray()
    if not ray.is_initialized():
        ray.init()
    refs = [{"index": i, "batch": ray.put(batch)} for i, batch in enumerate(batches)]
    if not refs:
        return
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    cpus = int(ray.cluster_resources().get("CPU", 1))
    settings = {"concurrency": max(1, min(cpus, len(refs))), "num_cpus": 1, **(options or {})}
    dataset = ray.data.from_items(refs, override_num_blocks=len(refs))
    mapped = dataset.map_batches(_Worker, fn_constructor_kwargs={"job": ray.put(job)}, batch_size=1,
                                 batch_format="numpy", zero_copy_batch=True, **settings)
    for expected, row in enumerate(mapped.iter_rows()):
        if int(row["index"]) != expected:
            raise SaliencyError(f"Ray returned batch {row['index']} where batch {expected} was due")
        write(row["result"])


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise SaliencyError(
            "engine='ray' needs Ray Data: pip install 'saliency-widgets[ray]' (or 'ray[data]')"
        ) from None
    return ray
