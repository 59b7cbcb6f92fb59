"""Build of the C extension fastopt._core (metadata lives in pyproject.toml)."""
import os
import sys

import numpy
from setuptools import Extension, setup

SOURCES = ["csrc/module.c", "csrc/bind_checks.c", "csrc/bind_optim.c", "csrc/bind_dense.c",
           "csrc/bind_net.c", "csrc/bind_linear.c", "csrc/optim.c", "csrc/dense.c", "csrc/train.c", "csrc/linear.c",
           "csrc/bind_loss.c", "csrc/loss.c", "csrc/bind_bench.c", "csrc/bench.c", "csrc/parallel.c"]
HEADERS = ["csrc/fastopt.h", "csrc/binding.h", "csrc/optim_impl.h", "csrc/dense_impl.h", "csrc/train_impl.h",
           "csrc/linear_impl.h", "csrc/reduce_impl.h", "csrc/loss_impl.h"]
# the loss surface under compare's parameter paths
SOURCES += ["csrc/bind_surface.c", "csrc/surface.c"]
HEADERS += ["csrc/surface_impl.h"]


def blas_options():
    """Link scipy-openblas32 (the BLAS NumPy and SciPy ship) when it is installed.

    At run time the library is found next to fastopt in site-packages (rpath
    $ORIGIN/../scipy_openblas32/lib); fastopt/__init__.py also loads it first
    through scipy_openblas32 for layouts where that path does not hold.
    """
    try:
        import scipy_openblas32 as ob
    except ImportError:
        print("fastopt: scipy-openblas32 not found, building without BLAS", file=sys.stderr)
        return {}
    opts = {
        "include_dirs": [ob.get_include_dir()],
        "library_dirs": [ob.get_lib_dir()],
        "libraries": [ob.get_library()],
        "define_macros": [("FO_HAVE_BLAS", "1")],
    }
    if sys.platform.startswith("linux"):
        opts["extra_link_args"] = ["-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib"]
    return opts


blas = blas_options()
# FASTOPT_FORCE_CLONE=avx2 (or avx512f) builds that ISA only instead of the
# runtime-dispatched clones: to measure, on an AVX-512 machine, the kernels an
# AVX2-only machine runs (build it in another directory: see benchmarks/bench_optim.py)
force_clone = os.environ.get("FASTOPT_FORCE_CLONE")
if force_clone and force_clone not in ("avx2", "avx512f"):
    sys.exit(f"FASTOPT_FORCE_CLONE must be avx2 or avx512f, got {force_clone!r}")
clone_macros = [("FO_FORCE_CLONE", force_clone)] if force_clone else []
compile_args = [] if sys.platform == "win32" else [
    "-O3", "-std=gnu11", "-fno-math-errno", "-ffp-contract=off", "-pthread", "-Wall", "-Wno-unused-function"]

core = Extension(
    "fastopt._core",
    sources=SOURCES,
    depends=HEADERS,
    include_dirs=["csrc", numpy.get_include()] + blas.get("include_dirs", []),
    library_dirs=blas.get("library_dirs", []),
    libraries=blas.get("libraries", []),
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")] + blas.get("define_macros", []) + clone_macros,
    extra_compile_args=compile_args,
    extra_link_args=blas.get("extra_link_args", []) + ([] if sys.platform == "win32" else ["-pthread"]),
)

setup(ext_modules=[core])
