"""Saving and loading models: ``model.save``, ``fastopt.load_model``,
``save_weights`` / ``load_weights`` and pickling, all through one serializer.

A file is a ZIP archive that ``numpy.load`` also reads (an ``.npz``)::

    fastopt.json     the header: {"format": "fastopt.Sequential", "format_version": 1,
                     "model": model.get_config(), "compile": {"loss", "metrics"} or null,
                     "optimizer": {"class_name", "config"} or null, "iterations": int or null,
                     "init_rng": the weight initializer's generator state,
                     "accumulated_steps": calls into the current cycle (only with an optimizer's
                     gradient_accumulation_steps; absent: 0)}
    params.npy       the flat parameter buffer: the model's dtype, shape (n,)   (built models)
    rng_state.npy    the shuffling generator's xoshiro256** state: uint64[4], not all zero
    slot_<k>.npy     the optimizer's state (m, v, ...): like params, one per slot in use

A weights file (``save_weights``) holds a header of format ``"fastopt.weights"``
and ``weight_<i>.npy`` in ``get_weights()`` order.

Loading refuses before it builds anything: the format and its version, every
header field, and every array's name, dtype, shape (against the architecture
in the header) and finiteness are checked; the step count is an integer in
``[0, 2**53]``.  Memory is bounded by what the header declares: each member's
declared size is checked against the architecture before it is decompressed,
and members are read with a bounded reader.  Whatever is wrong with a file
raises :class:`InvalidFileError` (a ``ValueError``) naming the file and the
field.

Every save goes through :func:`atomic_write`: ``path`` holds either the old
file or the complete new one, also after a crash or Ctrl-C.
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import secrets
import socket
import stat
import zipfile
import zlib
from typing import Any, BinaryIO, Callable, Optional, Union

import numpy as np

from . import _core
from . import layers as _layers
from . import losses as _losses
from . import optimizers as _optimizers
from .layers import Dense

__all__ = ["FORMAT_VERSION", "InvalidFileError", "atomic_write", "save_model", "load_model",
           "save_weights", "load_weights", "model_to_bytes", "model_from_bytes"]

PathLike = Union[str, os.PathLike]

FORMAT_VERSION = 1
MODEL_FORMAT = "fastopt.Sequential"
WEIGHTS_FORMAT = "fastopt.weights"
HEADER = "fastopt.json"
MAX_HEADER_BYTES = 1 << 22          # the JSON header of a file
_NPY_OVERHEAD = 12 + (1 << 16)      # the most a .npy member may add to its array's bytes
MAX_STEPS = 2 ** 53                 # step counts are exact integers in float64
TEMP_PREFIX = ".fastopt-tmp-"       # then <pid>-<host>-<random>.tmp


class InvalidFileError(ValueError):
    """A file (or pickle) that is not a valid fastopt save; the message names
    the file and the field."""


# -- the model's state: the one place that reads or writes model internals ---------------
def _model_state(model) -> dict[str, Any]:
    """What a file or a pickle holds of ``model``."""
    opt = model.optimizer
    slots = [(k, s) for k, s in enumerate(model._slots) if s is not None] if model.built else []
    return {"config": model.get_config(),
            "compile": None if opt is None else {"loss": model.loss, "metrics": _metric_configs(model)},
            "optimizer": opt, "iterations": None if opt is None else opt.iterations,
            # calls into the current gradient-accumulation cycle: with the accumulators
            # (a slot), a model saved mid-cycle resumes mid-cycle
            "accumulated_steps": opt._accumulated_steps
            if opt is not None and opt.gradient_accumulation_steps else None,
            "params": model._params if model.built else None, "slots": slots,
            "rng_state": model._rng_state, "init_rng": model._init_rng.bit_generator.state}


def _metric_configs(model) -> list:
    """compile's metrics as written: the name, or the config of a metric object
    whose settings a name would not give back (threshold, k, another name)."""
    out = []
    for name, kind, obj in model._metric_list:
        if obj is None or name.lower() in ("accuracy", "acc"):  # compile picks the same again
            out.append(name)
        else:
            out.append({"class_name": type(obj).__name__, "config": obj.get_config()})
    return out


def _slots_in_use(model) -> list[int]:
    """Which optimizer slots a built, compiled model keeps."""
    return [k for k, s in enumerate(model._slots) if s is not None]


def _install_state(model, params, slots: dict, rng_state, iterations, init_rng, accumulated=0) -> None:
    """Put validated state into a freshly built (and compiled) model."""
    if params is not None:
        model._params[...] = params
        for k, s in slots.items():
            model._slots[k][...] = s
    model._rng_state[...] = rng_state
    model._init_rng.bit_generator.state = init_rng
    if model.optimizer is not None:
        model.optimizer.iterations = iterations
        model.optimizer._step[0] += accumulated  # the calls into the cycle (checked: < its length)


# -- atomic, durable writes ----------------------------------------------------------------
_HOST = format(zlib.crc32(socket.gethostname().encode("utf-8", "replace")), "08x")


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap, harmless probe: leave the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale_temporaries(directory: PathLike) -> list[str]:
    """Remove the temporary files that saves killed mid-write left in
    ``directory`` (this host's, whose process is gone); returns their paths."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX) or not entry.name.endswith(".tmp"):
            continue
        parts = entry.name[len(TEMP_PREFIX):-len(".tmp")].split("-")
        if len(parts) != 3 or parts[1] != _HOST or not parts[0].isdigit():
            continue
        pid = int(parts[0])
        if pid == os.getpid() or _pid_alive(pid):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(entry.path)
    return removed


def _fsync_directory(directory: str) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as e:  # file systems that cannot sync a directory
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def atomic_write(path: PathLike, write: Callable[[BinaryIO], None], overwrite: bool = True) -> None:
    """Write a file through ``write(f)`` so that ``path`` holds either its old
    content or the complete new one, also after a crash, a kill or Ctrl-C.

    A temporary file in the target's directory (``.fastopt-tmp-<pid>-...``) is
    written, flushed and fsynced, renamed over the target, and the directory is
    fsynced.  The temporary file is removed on every error; ones left by a
    killed save (their process gone) are removed by the next save in that
    directory.  A symlink is followed: its target is replaced and the link
    kept.  A read-only target is refused (``PermissionError``), never replaced.
    A new file gets the ordinary mode (``0o666`` less the umask), a replaced
    one keeps its mode.
    """
    target = os.path.realpath(os.fspath(path))
    directory = os.path.dirname(target)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file to save to", os.fspath(path))
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{os.fspath(path)!r} is not a regular file; fastopt only replaces regular files")
        if not overwrite:
            raise FileExistsError(errno.EEXIST, "exists and overwrite=False", os.fspath(path))
        if not (st.st_mode & 0o222) or not os.access(target, os.W_OK):
            raise PermissionError(errno.EACCES, "is read-only; fastopt does not replace a read-only file "
                                  "(make it writable, or save to another path)", os.fspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "no such directory to save into", os.fspath(path))
    remove_stale_temporaries(directory)
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{os.getpid()}-{_HOST}-{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            if st is not None:
                os.chmod(tmp, stat.S_IMODE(st.st_mode))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


# -- writing an archive --------------------------------------------------------------------
def _check_suffix(path: PathLike, what: str) -> str:
    path = _check_path(path, what)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in ("", ".npz"):
        return path
    if suffix == ".keras":
        raise ValueError(f"{what}: {path!r}: fastopt writes NumPy .npz files, not Keras' .keras archives "
                         "(those hold a Keras/TensorFlow model that fastopt cannot write); "
                         "use a path ending in .npz")
    if suffix in (".h5", ".hdf5"):
        raise ValueError(f"{what}: {path!r}: fastopt writes NumPy .npz files, not HDF5 (.h5); "
                         "use a path ending in .npz")
    raise ValueError(f"{what}: {path!r} has the unknown suffix {suffix!r}; fastopt writes NumPy .npz files: "
                     "use a path ending in .npz, or with no suffix")


def _zip_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # the same state gives the same bytes
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _archive_writer(header: dict, arrays: dict[str, np.ndarray]) -> Callable[[BinaryIO], None]:
    """``write(f)`` for an archive of ``header`` and ``arrays``; the header is
    serialized now, so an unwritable configuration fails before any file exists."""
    text = json.dumps(header, allow_nan=False).encode()

    def write(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr(_zip_info(HEADER), text)
            for name, a in arrays.items():
                with zf.open(_zip_info(name + ".npy"), "w", force_zip64=True) as m:
                    np.lib.format.write_array(m, np.ascontiguousarray(a), allow_pickle=False)

    return write


def _model_writer(model) -> Callable[[BinaryIO], None]:
    state = _model_state(model)
    opt = state["optimizer"]
    header = {"format": MODEL_FORMAT, "format_version": FORMAT_VERSION, "model": state["config"],
              "compile": state["compile"],
              "optimizer": None if opt is None else _optimizers.serialize(opt),
              "iterations": state["iterations"], "init_rng": state["init_rng"]}
    if state["accumulated_steps"] is not None:
        header["accumulated_steps"] = state["accumulated_steps"]
    arrays = {"rng_state": state["rng_state"]}
    if state["params"] is not None:
        arrays["params"] = state["params"]
    for k, s in state["slots"]:
        arrays[f"slot_{k}"] = s
    return _archive_writer(header, arrays)


def save_model(model, path: PathLike, overwrite: bool = True) -> None:
    """``model.save(path)``: architecture, weights, optimizer state, step count
    and generator states in one ``.npz`` (see the module docstring), written by
    :func:`atomic_write`."""
    path = _check_suffix(path, "save")
    atomic_write(path, _model_writer(model), overwrite=overwrite)


def model_to_bytes(model) -> bytes:
    """The bytes ``save`` would write (what a pickle of the model holds)."""
    buf = io.BytesIO()
    _model_writer(model)(buf)
    return buf.getvalue()


def save_weights(model, path: PathLike, overwrite: bool = True) -> None:
    """``model.save_weights(path)``: the weights alone, ``get_weights()`` order."""
    path = _check_suffix(path, "save_weights")
    if not model.built:
        raise ValueError("save_weights: the model is not built, so it has no weights yet")
    weights = model.get_weights()
    header = {"format": WEIGHTS_FORMAT, "format_version": FORMAT_VERSION, "dtype": model.dtype.name,
              "shapes": [list(w.shape) for w in weights]}
    atomic_write(path, _archive_writer(header, {f"weight_{i}": w for i, w in enumerate(weights)}),
                 overwrite=overwrite)


# -- reading an archive --------------------------------------------------------------------
@contextlib.contextmanager
def _field(label: str, field: str):
    """Any failure inside becomes an InvalidFileError naming the file and the field."""
    try:
        yield
    except (InvalidFileError, MemoryError):
        raise
    except Exception as e:
        detail = str(e) if isinstance(e, (ValueError, TypeError)) and str(e) else f"{type(e).__name__}: {e}"
        raise InvalidFileError(f"cannot load {label}: {field}: {detail}") from e


def _refuse(label: str, field: str, message: str) -> InvalidFileError:
    return InvalidFileError(f"cannot load {label}: {field}: {message}")


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class _Archive:
    """A ZIP archive read with bounds: members are checked against the sizes
    they must have before a byte of them is decompressed."""

    def __init__(self, source, label: str):
        self.label = label
        if isinstance(source, (bytes, bytearray, memoryview)):
            f = io.BytesIO(bytes(source))
        else:
            try:
                f = open(source, "rb")
            except FileNotFoundError:
                raise InvalidFileError(f"cannot load {label}: no such file") from None
            except OSError as e:
                raise InvalidFileError(f"cannot load {label}: {e.strerror or e}") from e
        try:
            with _field(label, "archive"):
                self.zip = zipfile.ZipFile(f)
        except BaseException:
            f.close()
            raise
        self._file = f
        infos = self.zip.infolist()
        self.members = {i.filename: i for i in infos}
        if len(self.members) != len(infos):
            self.close()
            raise _refuse(label, "archive", "a member name appears twice")

    def close(self) -> None:
        self.zip.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read(self, name: str, limit: int, field: str) -> bytes:
        info = self.members.get(name)
        if info is None:
            raise _refuse(self.label, field, f"the member {name} is missing")
        if info.file_size > limit:
            raise _refuse(self.label, field, f"the member {name} declares {info.file_size} bytes, "
                                             f"more than the {limit} it can hold")
        with _field(self.label, field):
            with self.zip.open(info) as m:
                data = m.read(limit + 1)
        if len(data) != info.file_size:
            raise _refuse(self.label, field, f"the member {name} holds {len(data)} bytes, "
                                             f"its header declares {info.file_size}")
        return data

    def header(self, expected_format: str) -> dict:
        if HEADER not in self.members:
            raise _refuse(self.label, "header", f"no {HEADER} member: not a file written by fastopt's "
                                                "save (format version 1 or later)")
        data = self._read(HEADER, MAX_HEADER_BYTES, "header")
        with _field(self.label, "header"):
            header = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
        if not isinstance(header, dict):
            raise _refuse(self.label, "header", f"expected a JSON object, got {type(header).__name__}")
        fmt, version = header.get("format"), header.get("format_version")
        if type(version) is not int:
            raise _refuse(self.label, "format_version", f"expected an integer, got {version!r}")
        if version > FORMAT_VERSION or version < 1:
            raise _refuse(self.label, "format_version", f"this file has format version {version}; this "
                                                        f"fastopt reads version {FORMAT_VERSION}"
                          + (" (it was written by a newer fastopt)" if version > FORMAT_VERSION else ""))
        if fmt != expected_format:
            hint = {MODEL_FORMAT: "a whole model: use fastopt.load_model",
                    WEIGHTS_FORMAT: "weights only: use model.load_weights"}.get(fmt, "")
            raise _refuse(self.label, "format", f"expected {expected_format!r}, got {fmt!r}"
                          + (f" ({hint})" if hint else ""))
        return header

    def check_members(self, expected: dict[str, tuple[np.dtype, tuple]],
                      optional: dict[str, tuple[np.dtype, tuple]] = {}) -> None:
        """Every member is the header or an expected array, and declares the
        size its dtype and shape imply (before anything is decompressed)."""
        for name, info in self.members.items():
            if name == HEADER:
                continue
            key = name[:-4] if name.endswith(".npy") else None
            spec = expected.get(key) or optional.get(key)
            if spec is None:
                raise _refuse(self.label, name, "unexpected member (not an array this file can hold)")
            dtype, shape = spec
            nbytes = math.prod(shape) * dtype.itemsize
            if not nbytes < info.file_size <= nbytes + _NPY_OVERHEAD:
                raise _refuse(self.label, key, f"the member declares {info.file_size} bytes, but an array "
                                               f"of shape {shape} and dtype {dtype} takes {nbytes} "
                                               "(plus its .npy header)")
        for key in expected:
            if key + ".npy" not in self.members:
                raise _refuse(self.label, key, "the array is missing")

    def array(self, key: str, dtype: np.dtype, shape: tuple, finite: bool = True) -> np.ndarray:
        """The array ``key``, checked: exactly ``dtype`` (either byte order) and
        ``shape``, finite where asked.  Returns a native, contiguous copy."""
        nbytes = math.prod(shape) * dtype.itemsize
        data = self._read(key + ".npy", nbytes + _NPY_OVERHEAD, key)
        with _field(self.label, key):
            buf = io.BytesIO(data)
            version = np.lib.format.read_magic(buf)
            if version == (1, 0):
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_1_0(buf)
            elif version == (2, 0):
                got_shape, fortran, got_dtype = np.lib.format.read_array_header_2_0(buf)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        if got_dtype.newbyteorder("=") != dtype:
            raise _refuse(self.label, key, f"dtype {got_dtype}, expected {dtype}")
        if tuple(got_shape) != tuple(shape):
            raise _refuse(self.label, key, f"shape {tuple(got_shape)}, expected {tuple(shape)}")
        offset = buf.tell()
        if len(data) - offset != nbytes:
            raise _refuse(self.label, key, f"{len(data) - offset} bytes of data, expected {nbytes}")
        a = np.frombuffer(data, got_dtype, count=math.prod(shape), offset=offset)
        a = np.array(a.reshape(shape, order="F" if fortran else "C"), dtype=dtype, order="C")
        if finite and a.dtype.kind == "f" and not _core.all_finite(a):
            raise _refuse(self.label, key, "contains NaN or inf")
        return a


def _label(path) -> str:
    return repr(os.fspath(path))


def _check_path(path, what: str) -> str:
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what}: path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"{what}: path must be a str or os.PathLike of str, got {type(path).__name__}")
    return path


# -- validating the header -----------------------------------------------------------------
def _checked_int(label, field, value, low, high=None, optional=False):
    if value is None and optional:
        return None
    if type(value) is not int:
        raise _refuse(label, field, f"expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        raise _refuse(label, field, f"{value} is outside [{low}, {high if high is not None else 'inf'}]")
    return value


_MODEL_KEYS = {"name", "dtype", "seed", "input_dim", "layers"}  # Sequential.get_config()


def _architecture(label: str, cfg) -> dict[str, Any]:
    """The model config, checked field by field: the layers (built as Dense
    objects, which checks them), the dtype, the input width, and the parameter
    count they imply.  Nothing is allocated."""
    if not isinstance(cfg, dict):
        raise _refuse(label, "model", f"expected a JSON object, got {type(cfg).__name__}")
    if set(cfg) != _MODEL_KEYS:
        extra, missing = sorted(set(cfg) - _MODEL_KEYS), sorted(_MODEL_KEYS - set(cfg))
        raise _refuse(label, "model", f"unexpected keys {extra}" if extra else f"missing keys {missing}")
    if not isinstance(cfg["name"], str):
        raise _refuse(label, "model.name", f"expected a string, got {cfg['name']!r}")
    if cfg["dtype"] not in ("float32", "float64"):
        raise _refuse(label, "model.dtype", f"expected 'float32' or 'float64', got {cfg['dtype']!r}")
    _checked_int(label, "model.seed", cfg["seed"], 0, optional=True)
    input_dim = _checked_int(label, "model.input_dim", cfg["input_dim"], 1, optional=True)
    if not isinstance(cfg["layers"], list):
        raise _refuse(label, "model.layers", f"expected a list, got {type(cfg['layers']).__name__}")
    layers = []
    for i, c in enumerate(cfg["layers"]):
        field = f"model.layers[{i}]"
        if not isinstance(c, dict) or not all(isinstance(k, str) for k in c):
            raise _refuse(label, field, "expected a JSON object")
        with _field(label, field):
            if "class_name" in c:  # Dropout, Activation (Dense is written plain)
                if c.get("class_name") not in ("Dropout", "Activation"):
                    raise ValueError(f"unknown layer {c.get('class_name')!r}")
                layers.append(_layers.deserialize(c))
            else:
                layers.append(Dense.from_config(c))
    dense = [l for l in layers if isinstance(l, Dense)]
    if input_dim is not None and not dense:
        raise _refuse(label, "model.input_dim", "a model with no layers has no input width")
    n_params = None
    if input_dim is not None:
        n_params, fan_in = 0, input_dim
        for layer in dense:
            n_params += layer.count_params(fan_in)
            fan_in = layer.units
    return {"layers": layers, "dtype": np.dtype(cfg["dtype"]), "seed": cfg["seed"], "name": cfg["name"],
            "input_dim": input_dim, "n_params": n_params}


def _compile_section(label: str, header: dict) -> Optional[dict[str, Any]]:
    """The optimizer (built from its config, which checks it), loss, metrics and step count."""
    comp, opt_cfg, iterations = header.get("compile"), header.get("optimizer"), header.get("iterations")
    if comp is None:
        if opt_cfg is not None or iterations is not None or "accumulated_steps" in header:
            raise _refuse(label, "optimizer", "an optimizer or step count without a compile section")
        return None
    if not isinstance(comp, dict) or set(comp) != {"loss", "metrics"}:
        raise _refuse(label, "compile", "expected {\"loss\": ..., \"metrics\": [...]}")
    if not isinstance(comp["loss"], (str, dict)):
        raise _refuse(label, "compile.loss", f"expected a name or a loss config, got {comp['loss']!r}")
    if isinstance(comp["loss"], dict):
        with _field(label, "compile.loss"):
            _losses.deserialize(comp["loss"])
    if not isinstance(comp["metrics"], list) or not all(isinstance(m, (str, dict)) for m in comp["metrics"]):
        raise _refuse(label, "compile.metrics", f"expected a list of names, got {comp['metrics']!r}")
    if not isinstance(opt_cfg, dict) or not isinstance(opt_cfg.get("config"), dict) \
            or not isinstance(opt_cfg.get("class_name"), str):
        raise _refuse(label, "optimizer", "expected {\"class_name\": ..., \"config\": {...}}")
    with _field(label, "optimizer"):
        # strict: fastopt wrote this file, so a key its optimizers do not take
        # means the file is not as written (no warnings filter: those are global)
        optimizer = _optimizers.deserialize(opt_cfg, strict=True)
    iterations = _checked_int(label, "iterations", iterations, 0, MAX_STEPS)
    cycle = optimizer.gradient_accumulation_steps or 1
    if cycle == 1 and "accumulated_steps" in header:
        raise _refuse(label, "accumulated_steps", "present, but the optimizer has no gradient_accumulation_steps")
    accumulated = _checked_int(label, "accumulated_steps", header.get("accumulated_steps", 0), 0, cycle - 1)
    if iterations * cycle + accumulated > MAX_STEPS:
        raise _refuse(label, "iterations", f"{iterations} updates of {cycle} calls (+ {accumulated}) exceed 2**53 calls")
    return {"optimizer": optimizer, "loss": comp["loss"], "metrics": comp["metrics"],
            "iterations": iterations, "accumulated": accumulated}


def _generator_state(label: str, state) -> dict:
    """The weight initializer's generator state, checked by setting it on a spare generator."""
    if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
        raise _refuse(label, "init_rng", "expected a PCG64 state")
    with _field(label, "init_rng"):
        np.random.PCG64().state = state
    return state


# -- loading -------------------------------------------------------------------------------
def _load(source, label: str, cls=None):
    from .models import Sequential

    with _Archive(source, label) as archive:
        header = archive.header(MODEL_FORMAT)
        known = {"format", "format_version", "model", "compile", "optimizer", "iterations", "init_rng"}
        if set(header) - {"accumulated_steps"} != known:
            extra, missing = sorted(set(header) - known - {"accumulated_steps"}), sorted(known - set(header))
            raise _refuse(label, "header", f"unexpected fields {extra}" if extra else f"missing fields {missing}")
        arch = _architecture(label, header["model"])
        comp = _compile_section(label, header)
        init_rng = _generator_state(label, header["init_rng"])

        # the arrays: sizes checked against the architecture, then read and checked
        flat = None if arch["n_params"] is None else (arch["dtype"], (arch["n_params"],))
        expected = {"rng_state": (np.dtype(np.uint64), (4,))}
        optional = {}
        if flat is not None:
            expected["params"] = flat
            if comp is not None:
                optional = {f"slot_{k}": flat for k in range(_core.MAX_SLOTS)}
        archive.check_members(expected, optional)
        rng_state = archive.array("rng_state", *expected["rng_state"])
        if not rng_state.any():
            raise _refuse(label, "rng_state", "all zeros, which the xoshiro256** generator never leaves")
        params = None if flat is None else archive.array("params", *flat)
        slots = {int(k[5:]): archive.array(k, *flat) for k in optional if k + ".npy" in archive.members}

    # everything checked: build the model
    with _field(label, "model"):
        model = Sequential(arch["layers"], dtype=arch["dtype"].name, seed=arch["seed"], name=arch["name"])
        if arch["input_dim"] is not None and not model.built:
            model.build((None, arch["input_dim"]))
    if comp is not None:
        with _field(label, "compile"):
            model.compile(comp["optimizer"], comp["loss"], comp["metrics"])
        if params is not None:
            in_use = _slots_in_use(model)
            for k in range(_core.MAX_SLOTS):
                if (k in in_use) != (k in slots):
                    raise _refuse(label, f"slot_{k}", "missing: this optimizer configuration keeps it"
                                  if k in in_use else "unexpected: this optimizer configuration keeps no such state")
    _install_state(model, params, slots, rng_state, None if comp is None else comp["iterations"], init_rng,
                   0 if comp is None else comp["accumulated"])
    if cls is not None and cls is not type(model):
        obj = cls.__new__(cls)
        obj.__dict__.update(model.__dict__)
        model = obj
    return model


def load_model(path: PathLike):
    """A model saved by ``model.save(path)``, with its optimizer state, step
    count and generators: training resumes bit for bit.

    The file is checked whole before anything is built; a bad file raises
    :class:`InvalidFileError` (a ``ValueError``) naming the file and the field.
    """
    path = _check_path(path, "load_model")
    return _load(path, _label(path))


def model_from_bytes(data: bytes, cls=None):
    """The model :func:`model_to_bytes` serialized (how a pickled model comes back)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"model_from_bytes: data must be bytes, got {type(data).__name__}")
    return _load(data, "the serialized model", cls)


def load_weights(model, path: PathLike) -> None:
    """``model.load_weights(path)``: weights written by ``save_weights``.

    Their count, shapes, dtype (float32 or float64, cast to the model's) and
    finiteness are checked against the model before anything changes; an
    unbuilt model is built for the file's input width."""
    path = _check_path(path, "load_weights")
    label = _label(path)
    with _Archive(path, label) as archive:
        header = archive.header(WEIGHTS_FORMAT)
        known = {"format", "format_version", "dtype", "shapes"}
        if set(header) != known:
            extra, missing = sorted(set(header) - known), sorted(known - set(header))
            raise _refuse(label, "header", f"unexpected fields {extra}" if extra else f"missing fields {missing}")
        if header["dtype"] not in ("float32", "float64"):
            raise _refuse(label, "dtype", f"expected 'float32' or 'float64', got {header['dtype']!r}")
        dtype = np.dtype(header["dtype"])
        shapes = header["shapes"]
        if not isinstance(shapes, list) or not all(
                isinstance(s, list) and all(type(d) is int and d >= 1 for d in s) for s in shapes):
            raise _refuse(label, "shapes", "expected a list of shapes (lists of positive integers)")
        shapes = [tuple(s) for s in shapes]
        expected = _expected_shapes(model, shapes)
        if shapes != expected:
            raise _refuse(label, "shapes", f"the file holds weights of shapes {shapes}; "
                                           f"this model's are {expected}")
        specs = {f"weight_{i}": (dtype, s) for i, s in enumerate(shapes)}
        archive.check_members(specs)
        weights = [archive.array(k, *spec) for k, spec in specs.items()]
    if not model.built:
        model.build((None, shapes[0][0]))
    model.set_weights(weights)


def _expected_shapes(model, shapes: list[tuple]) -> list[tuple]:
    """The shapes of ``model.get_weights()`` (an unbuilt model: as it would be
    built for the input width of ``shapes[0]``)."""
    if model.built:
        return [tuple(v.shape) for v in model.trainable_variables]
    if not model._dense or not shapes or len(shapes[0]) != 2:
        return []
    out, fan_in = [], shapes[0][0]
    for layer in model._dense:
        out.append((fan_in, layer.units))
        if layer.use_bias:
            out.append((layer.units,))
        fan_in = layer.units
    return out
