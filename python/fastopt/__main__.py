"""``python -m fastopt [--quick]``: run the articles' examples and time them
against NumPy, PyTorch and scikit-learn (see ``fastopt._demo``)."""
import sys

from ._demo import main

sys.exit(main())
