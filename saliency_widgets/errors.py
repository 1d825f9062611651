"""Exceptions and warnings raised by saliency_widgets, with messages meant for people."""


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
