class DivergenceWarning(RuntimeWarning):
    """..."""
