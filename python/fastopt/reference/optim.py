"""NumPy twins of the optimizer kernels (csrc/optim_impl.h)."""
__all__: list = []
