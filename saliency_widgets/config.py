"""Tunable budgets, shared by the functional core and the widgets.

Change them at run time, e.g. ``sw.config.jacobian_budget_bytes = 2**30``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Config:
    """Memory and size budgets in bytes."""

    #: The largest Jacobian ``sw.jacobian`` will return; larger requests are refused
    #: with a message suggesting ``outputs=``.
    jacobian_budget_bytes: int = 1 << 30
    #: Working memory of one batched pass (estimated from the input size); Jacobian
    #: rows, SmoothGrad samples and IG steps are split into passes under it. Small
    #: enough for the activations to stay in the CPU cache, which is faster than
    #: one huge batch.
    chunk_budget_bytes: int = 16 << 20
    #: A widget sends one sample's full Jacobian to the browser when it fits this
    #: budget, so that clicking another output needs no kernel round trip.
    prefetch_budget_bytes: int = 8 << 20
    #: Working memory of one batched backward pass over a language model's generated tokens
    #: (``sw.attribute_generation``): each row's gradient of the logits is as large as the logits
    #: of the context, so rows (and integrated gradients' steps) are split into passes under it.
    generation_budget_bytes: int = 256 << 20
    #: The size a widget's ``to_html`` page keeps to by default (``to_html(max_bytes=)`` overrides it):
    #: over it, the page stores its maps as 8-bit values (see ``widgets/standalone.py``).
    html_budget_bytes: int = 3_000_000


config = Config()
