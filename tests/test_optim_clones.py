"""The optimizer kernels bit for bit against their NumPy twins, on every clone.

The kernels are compiled for AVX-512, AVX2 and the baseline ISA and the loader
picks one (csrc/fastopt.h, FO_CLONES); with -ffp-contract=off every clone must
give the bits of the NumPy twins in fastopt.reference, which do the same
float operations in the same order.  The installed module runs one clone; to
check the others, this file compiles csrc/optim.c and csrc/parallel.c with
tests/optim_clone_driver.c once per clone this CPU can run (FO_FORCE_CLONE, or
FO_NO_CLONES for the baseline), with setup.py's flags, and loads each build
with ctypes (a second or so per build; skipped without a C compiler).

Covered: every rule (SGD plain, momentum, Nesterov; Adagrad; RMSprop with and
without momentum and centering; Adam with and without AMSGrad), with and
without weight decay (the loop without the decay multiply, and the one with
it), clipvalue (the general loop), float32 and float64, lengths around every
vector width, and a length of 2**20 + 37 (split into chunks across threads);
and the finite flag the same pass computes, with NaN and infinities at the
edges of vectors and chunks.
"""
import ctypes
import os
import platform
import shutil
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

import fastopt as fo
from fastopt import _core
from fastopt.reference import ReferenceOptimizer, adagrad_update, adam_update, rmsprop_update, sgd_update

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LR = 0.01
CONFIGS = [
    ("sgd", {}), ("sgd", dict(momentum=0.9)), ("sgd", dict(momentum=0.9, nesterov=True)),
    ("adagrad", {}),
    ("rmsprop", {}), ("rmsprop", dict(momentum=0.5)), ("rmsprop", dict(centered=True)),
    ("rmsprop", dict(momentum=0.5, centered=True)),
    ("adam", {}), ("adam", dict(amsgrad=True)),
]
IDS = [k + "".join(f"-{a}" for a in c) for k, c in CONFIGS]
SMALL = [1, 7, 15, 16, 17, 33, 1000]
BIG = (1 << 20) + 37  # csrc/optim.c splits variables of 2**20 elements or more
# setup.py's flags for the kernels (no -march, no -ffast-math, contraction off)
CFLAGS = ["-O3", "-std=gnu11", "-fno-math-errno", "-ffp-contract=off", "-pthread", "-fPIC", "-shared"]


# -- the builds ------------------------------------------------------------------------------

def compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


def clones_here():
    """The clones this CPU runs: the baseline, and the vector ones where x86-64 ELF builds them."""
    out = ["default"]
    if sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64"):
        features = _core.cpu_features()
        out += [c for c in ("avx2", "avx512f") if features.get(c)]
    return out


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """{clone: ctypes library} for every clone this CPU runs, compiled side by side."""
    cc = compiler()
    if cc is None:
        pytest.skip("no C compiler to build the other clones with")
    tmp = tmp_path_factory.mktemp("clones")
    srcs = [os.path.join(ROOT, "csrc", "optim.c"), os.path.join(ROOT, "csrc", "parallel.c"),
            os.path.join(ROOT, "tests", "optim_clone_driver.c")]
    # the compiler runs without the sanitizer job's preloaded runtime (.ci/sanitize)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    procs = {}
    for clone in clones_here():
        macro = "-DFO_NO_CLONES" if clone == "default" else f"-DFO_FORCE_CLONE={clone}"
        out = str(tmp / f"optim_{clone}.so")
        procs[clone] = (out, subprocess.Popen([cc, *CFLAGS, macro, "-I", os.path.join(ROOT, "csrc"), *srcs,
                                               "-o", out, "-lm"], stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True, env=env))
    libs = {}
    for clone, (out, proc) in procs.items():
        log = proc.communicate()[0]
        assert proc.returncode == 0, f"building the {clone} clone failed:\n{log}"
        lib = ctypes.CDLL(out)
        lib.fo_test_kind.argtypes = [ctypes.c_char_p]
        lib.fo_test_step.restype = ctypes.c_int
        p = ctypes.c_void_p
        lib.fo_test_step.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, p, p, p, p, p,
                                     ctypes.POINTER(ctypes.c_double), ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                     ctypes.c_longlong]
        libs[clone] = lib
    return libs


# -- one step three ways -----------------------------------------------------------------------

def start(kind, cfg, n, dtype, seed):
    """var, grad and the rule's three slots (None where unused), seeded."""
    rng = np.random.default_rng(seed)
    var = rng.standard_normal(n).astype(dtype)
    slots = [None, None, None]
    if kind == "sgd":
        if cfg.get("momentum"):
            slots[0] = (rng.standard_normal(n) * 0.01).astype(dtype)
    elif kind == "adagrad":
        slots[0] = (rng.random(n) * 0.1).astype(dtype)
    elif kind == "rmsprop":
        slots[0] = (0.001 + rng.random(n) * 0.01).astype(dtype)
        if cfg.get("momentum"):
            slots[1] = (rng.standard_normal(n) * 0.01).astype(dtype)
        if cfg.get("centered"):  # v - a^2 stays positive: no NaN from the square root
            slots[2] = (rng.standard_normal(n) * 0.001).astype(dtype)
    else:
        slots[0] = (rng.standard_normal(n) * 0.01).astype(dtype)
        slots[1] = (rng.random(n) * 0.01).astype(dtype)
        if cfg.get("amsgrad"):
            slots[2] = (rng.random(n) * 0.01).astype(dtype)
    return var, slots, rng


def hyper(kind, cfg, weight_decay, clipvalue):
    rho = 0.9 if kind == "rmsprop" else 0.0
    return dict(learning_rate=LR, weight_decay=weight_decay, momentum=cfg.get("momentum", 0.0), rho=rho,
                beta_1=0.9, beta_2=0.999, epsilon=1e-7, clipvalue=clipvalue, nesterov=cfg.get("nesterov", False),
                centered=cfg.get("centered", False), amsgrad=cfg.get("amsgrad", False))


def reference_step(kind, hp, var, grad, slots, iteration):
    """fastopt.reference's update of the same step, in place."""
    g = np.clip(grad, -hp["clipvalue"], hp["clipvalue"]) if hp["clipvalue"] else grad
    common = dict(learning_rate=hp["learning_rate"], weight_decay=hp["weight_decay"])
    if kind == "sgd":
        sgd_update(var, g, slots[0], momentum=hp["momentum"], nesterov=hp["nesterov"], **common)
    elif kind == "adagrad":
        adagrad_update(var, g, slots[0], epsilon=hp["epsilon"], **common)
    elif kind == "rmsprop":
        rmsprop_update(var, g, slots[0], slots[1], slots[2], rho=hp["rho"], momentum=hp["momentum"],
                       epsilon=hp["epsilon"], centered=hp["centered"], **common)
    else:
        adam_update(var, g, slots[0], slots[1], slots[2], beta_1=hp["beta_1"], beta_2=hp["beta_2"],
                    epsilon=hp["epsilon"], amsgrad=hp["amsgrad"], iteration=iteration, **common)


def clone_step(lib, kind, hp, var, grad, slots, iteration) -> bool:
    """The same step through a clone's fo_optim_update, in place; its finite flag."""
    dtype = lib.fo_test_dtype(var.dtype.itemsize * 8)
    code = lib.fo_test_kind(kind.encode())
    assert code >= 0 and dtype >= 0
    values = (ctypes.c_double * 8)(hp["learning_rate"], hp["weight_decay"], hp["momentum"], hp["rho"],
                                   hp["beta_1"], hp["beta_2"], hp["epsilon"], hp["clipvalue"])
    ptr = [None if s is None else s.ctypes.data for s in slots]
    return bool(lib.fo_test_step(code, dtype, var.size, var.ctypes.data, grad.ctypes.data, *ptr, values,
                                 int(hp["nesterov"]), int(hp["centered"]), int(hp["amsgrad"]), iteration))


def same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(f"u{a.dtype.itemsize}"), b.view(f"u{b.dtype.itemsize}"))


def run_both(lib, kind, cfg, n, dtype, weight_decay, clipvalue, steps=3, seed=0):
    hp = hyper(kind, cfg, weight_decay, clipvalue)
    var, slots, rng = start(kind, cfg, n, dtype, seed)
    ref_var, ref_slots = var.copy(), [None if s is None else s.copy() for s in slots]
    for it in range(steps):
        grad = (rng.standard_normal(n) * 0.1).astype(dtype)
        assert clone_step(lib, kind, hp, var, grad, slots, it)
        reference_step(kind, hp, ref_var, grad, ref_slots, it)
    same_bits(var, ref_var)
    for s, r in zip(slots, ref_slots):
        if s is not None:
            same_bits(s, r)
    assert not np.array_equal(var, start(kind, cfg, n, dtype, seed)[0])  # the steps did something


# -- the tests -----------------------------------------------------------------------------------

@pytest.mark.parametrize("clone", ["default", "avx2", "avx512f"])
@pytest.mark.parametrize("kind, cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_clone_gives_the_twins_bits(builds, clone, kind, cfg, dtype):
    if clone not in builds:
        pytest.skip(f"this CPU does not run the {clone} clone")
    for n in SMALL:
        for weight_decay, clipvalue in [(0.0, 0.0), (0.05, 0.0), (0.0, 0.05)]:
            run_both(builds[clone], kind, cfg, n, dtype, weight_decay, clipvalue, seed=n)


@pytest.mark.parametrize("clone", ["default", "avx2", "avx512f"])
@pytest.mark.parametrize("kind, cfg", CONFIGS[1:3] + CONFIGS[3:5] + CONFIGS[8:9], ids=IDS[1:3] + IDS[3:5] + IDS[8:9])
def test_every_clone_split_into_chunks(builds, clone, kind, cfg):
    """2**20 + 37 elements: cut into chunks that the calling thread and the pool take in turn."""
    if clone not in builds:
        pytest.skip(f"this CPU does not run the {clone} clone")
    run_both(builds[clone], kind, cfg, BIG, np.float32, 0.0, 0.0, steps=2)


@pytest.mark.parametrize("clone", ["default", "avx2", "avx512f"])
@pytest.mark.parametrize("kind, cfg", [CONFIGS[1], CONFIGS[3], CONFIGS[4], CONFIGS[8]], ids=[IDS[1], IDS[3], IDS[4], IDS[8]])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_clone_flags_non_finite_results(builds, clone, kind, cfg, dtype):
    """The finite flag is 0 exactly when some new value of var is NaN or infinite,
    wherever it lies: in a vector's lanes, its tail, either side of a chunk edge."""
    if clone not in builds:
        pytest.skip(f"this CPU does not run the {clone} clone")
    lib = builds[clone]
    hp = hyper(kind, cfg, 0.0, 0.0)
    info = np.finfo(dtype)
    for n, positions in [(37, [0, 15, 16, 31, 36]), (BIG, [(1 << 16) - 1, 1 << 16, BIG - 1])]:
        var0, slots0, rng = start(kind, cfg, n, dtype, seed=n)
        var0[n // 2] = -0.0                   # finite edge cases never raise the flag
        var0[n // 3] = info.tiny / 4          # a subnormal
        var0[n // 5] = info.max / 2
        grad0 = (rng.standard_normal(n) * 0.1).astype(dtype)
        cases = [(None, "none")] + [(p, "nan-grad") for p in positions] + [(positions[-1], "inf-var")]
        for pos, bad in cases:
            var, grad = var0.copy(), grad0.copy()
            slots = [None if s is None else s.copy() for s in slots0]
            if bad == "nan-grad":
                grad[pos] = np.nan
            elif bad == "inf-var":
                var[pos] = -np.inf
            finite = clone_step(lib, kind, hp, var, grad, slots, 0)
            assert finite == bool(np.isfinite(var).all()) == (bad == "none"), (n, pos, bad)


@pytest.mark.parametrize("kind, cfg", CONFIGS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_installed_module_gives_the_twins_bits(kind, cfg, dtype, weight_decay):
    """The clone the installed module runs, through apply_gradients, against
    ReferenceOptimizer: the same bits after several steps, on short and split lengths."""
    for n in (17, 1000) + ((BIG,) if dtype == np.float32 and not weight_decay else ()):
        rng = np.random.default_rng(n)
        w = rng.standard_normal(n).astype(dtype)
        opt = {"sgd": fo.optimizers.SGD, "adagrad": fo.optimizers.Adagrad, "rmsprop": fo.optimizers.RMSprop,
               "adam": fo.optimizers.Adam}[kind](learning_rate=LR, weight_decay=weight_decay or None, **cfg)
        ref = ReferenceOptimizer(kind, learning_rate=LR, weight_decay=weight_decay or None, **cfg)
        wr = w.copy()
        for _ in range(2 if n == BIG else 3):
            g = (rng.standard_normal(n) * 0.1).astype(dtype)
            opt.apply_gradients([(g, w)])
            ref.apply_gradients([(g, wr)])
        same_bits(w, wr)
        for mine, theirs in zip(opt.get_state([w])["slots"][0], ref.slots(wr)):
            if mine is not None:
                same_bits(mine, theirs)
