"""PyTorch: ``torch.nn.Module`` and callables on torch tensors, differentiated with ``autograd.grad``.

Imported only once a torch model shows up (see :func:`..get_backend`)."""
