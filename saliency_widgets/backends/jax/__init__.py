"""JAX: Flax NNX modules, ``jax.jit`` functions and plain functions on jax arrays
(``framework="jax"``), differentiated with ``jax.vjp`` / ``jax.vmap``.

Imported only once a JAX model shows up (see :func:`..get_backend`)."""
