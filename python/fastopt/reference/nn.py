"""NumPy twins of the dense, loss and training-loop kernels (csrc/dense_impl.h, csrc/train_impl.h)."""
__all__: list = []
