"""Tunable budgets, shared by the functional core and the widgets.

Change them at run time, e.g. ``sw.config.jacobian_budget_bytes = 2**30``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    """Memory budgets in bytes."""

    #: The largest Jacobian ``sw.jacobian`` will return; larger requests are refused
    #: with a message suggesting ``outputs=``.
    jacobian_budget_bytes: int = 1 << 30
    #: Memory one batched pass may use for its input copies and gradients; work is
    #: split into chunks under it (Jacobian rows, SmoothGrad samples, IG steps).
    chunk_budget_bytes: int = 256 << 20
    #: A widget sends one sample's full Jacobian to the browser when it fits this
    #: budget, so that clicking another output needs no kernel round trip.
    prefetch_budget_bytes: int = 8 << 20


config = Config()
