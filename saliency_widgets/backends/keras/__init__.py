"""Keras 3, whatever runs underneath: one Keras code path (layers by Keras names, channels-last,
weight blocks, final activations, heads and layers, the graph walk) in :mod:`.backend`, and a small
gradient engine per Keras backend (:mod:`.tensorflow_engine`, :mod:`.torch_engine`,
:mod:`.jax_engine`), after Keras's own ``keras/src/backend/{tensorflow,torch,jax}/``.

Imported only once a Keras model shows up (see :func:`..get_backend`)."""
