"""Exceptions and warnings raised by saliency_widgets, with messages meant for people."""

from pathlib import Path


class SaliencyError(ValueError):
    """A request that cannot be answered as asked (wrong shape, bad target, unknown method ...)."""


class NotAModelError(TypeError):
    """The object passed as a model is neither a PyTorch module/callable nor a Keras model."""


class NonDifferentiableError(SaliencyError):
    """The output does not depend differentiably on the input (integer input, argmax, detach ...)."""


class MemoryBudgetError(SaliencyError):
    """A computation would need more memory than the configured budget allows."""


class SaliencyWarning(UserWarning):
    """Something that makes an attribution misleading: NaN/Inf, training mode, a saturated softmax."""


def describe(exc: BaseException) -> str:
    """What a widget's error banner says about ``exc``: a :class:`SaliencyError`'s own message (written
    for people); any other exception by its type and message, as Python prints them, and by who raised it
    — the model (its code or its framework's), or saliency_widgets itself when the innermost frame is
    ours (a bug): e.g. ``"the model raised RuntimeError: CUDA out of memory"``."""
    if isinstance(exc, SaliencyError):
        return str(exc) or type(exc).__name__
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ in ("builtins", "__main__") else f"{kind.__module__}.{kind.__qualname__}"
    said = f"{name}: {exc}" if str(exc) else name
    if _raised_here(exc):
        return f"saliency_widgets failed with {said} (a bug in saliency_widgets: please report it)"
    return f"the model raised {said}"


def _raised_here(exc: BaseException) -> bool:
    """Whether the innermost Python frame of ``exc``'s traceback is in this package."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


_PACKAGE = Path(__file__).resolve().parent
