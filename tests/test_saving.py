"""fastopt.saving: the file format and its checks, atomic and durable saves,
save_weights / load_weights, and pickling.

Each defect of issue 9's "Loading and restoring state" and "Saving" lists has
a regression test here: a one-element params array broadcast to every weight,
NaN / complex / string arrays, a missing slot, any JSON value taken as the
step count, a zip bomb, an all-zero generator state, temporary files left by a
killed save, a save through a symlink, a read-only target, and exceptions
other than ValueError / TypeError."""
import copy
import io
import json
import os
import pickle
import signal
import stat
import struct
import subprocess
import sys
import warnings
import textwrap
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import fastopt as fo
from fastopt import saving


def make_model(dtype="float32", seed=3, optimizer=None):
    model = fo.Sequential([fo.Dense(4, activation="tanh", input_shape=(3,)), fo.Dense(2)],
                          dtype=dtype, seed=seed)
    model.compile(optimizer or fo.optimizers.Adam(0.01), "mse", metrics=["mae"])
    return model


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    return x, np.tanh(x[:, :2]) + 0.1 * rng.standard_normal((n, 2))


def trained(dtype="float32", **kw):
    model = make_model(dtype, **kw)
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model


def same_model(a, b):
    assert a.get_config() == b.get_config()
    for u, v in zip(a.get_weights(), b.get_weights()):
        assert u.dtype == v.dtype
        np.testing.assert_array_equal(u, v)
    assert (a.optimizer is None) == (b.optimizer is None)
    np.testing.assert_array_equal(a._rng_state, b._rng_state)
    if a.optimizer is not None:
        assert a.optimizer.iterations == b.optimizer.iterations
        assert a.optimizer.get_config() == b.optimizer.get_config()
        for s, t in zip(a._slots, b._slots):
            assert (s is None) == (t is None)
            if s is not None:
                np.testing.assert_array_equal(s, t)


# -- crafting files ---------------------------------------------------------------------------
def read_members(path) -> dict:
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def npy(a, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=allow_pickle)
    return buf.getvalue()


def zip_bytes(entries) -> bytes:
    """A ZIP archive written by hand, so a member can lie about its size.

    entries: (name, payload, method, crc, size): payload as stored (raw
    deflate for method 8); crc and size default to the stored payload's."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, payload, method, crc, size in entries:
        name = name.encode()
        crc = zlib.crc32(payload) if crc is None else crc
        size = len(payload) if size is None else size
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(payload), size,
                              len(name), 0) + name + payload)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                                  len(payload), size, len(name), 0, 0, 0, 0, 0, offset) + name)
    cd = central.getvalue()
    n = len(entries)
    return out.getvalue() + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), out.tell(), 0)


def write_members(path, members: dict) -> None:
    """Write ``members`` ({name: stored bytes}) as a plain stored ZIP archive."""
    path.write_bytes(zip_bytes([(n, b, 0, None, None) for n, b in members.items()]))


def tampered(tmp_path, model=None, header=None, arrays=None, drop=(), name="bad.npz"):
    """A saved model's file with header fields replaced (``header``: a function
    editing the dict), arrays replaced (``arrays``: {name: array or bytes}) or
    members dropped."""
    src = tmp_path / "good.npz"
    (model or trained()).save(src)
    members = read_members(src)
    if header is not None:
        h = json.loads(members["fastopt.json"])
        header(h)
        members["fastopt.json"] = json.dumps(h).encode()
    for k, a in (arrays or {}).items():
        members[k + ".npy"] = a if isinstance(a, bytes) else npy(a)
    for k in drop:
        del members[k]
    dst = tmp_path / name
    write_members(dst, members)
    return dst


def refused(path, *fields):
    """load_model refuses ``path`` with a ValueError naming the file and each of ``fields``."""
    with pytest.raises(ValueError) as info:
        fo.load_model(path)
    message = str(info.value)
    assert isinstance(info.value, saving.InvalidFileError)
    assert repr(str(path)) in message, message
    for f in fields:
        assert f in message, message
    return message


# -- the format ---------------------------------------------------------------------------------
def test_file_is_a_versioned_npz(tmp_path):
    model = trained()
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        assert sorted(f.files) == ["fastopt.json", "params", "rng_state", "slot_0", "slot_1"]
        header = json.loads(f["fastopt.json"])
        np.testing.assert_array_equal(f["params"], model._params)
    assert header["format"] == "fastopt.Sequential"
    assert header["format_version"] == saving.FORMAT_VERSION == 1
    assert header["iterations"] == model.optimizer.iterations


def test_same_state_gives_the_same_bytes(tmp_path):
    model = trained()
    model.save(tmp_path / "a.npz")
    model.save(tmp_path / "b.npz")
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


@pytest.mark.parametrize("version", [0, 2, 99, "1", 1.0, None, True])
def test_format_version_is_checked(tmp_path, version):
    refused(tampered(tmp_path, header=lambda h: h.update(format_version=version)), "format_version")


def test_file_from_a_newer_fastopt_says_so(tmp_path):
    msg = refused(tampered(tmp_path, header=lambda h: h.update(format_version=2)), "format_version")
    assert "newer" in msg


def test_not_a_fastopt_file(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, params=np.zeros(3))
    refused(path, "header", "fastopt.json")
    refused(tampered(tmp_path, header=lambda h: h.update(format="keras")), "format")


def test_weights_file_and_model_file_are_told_apart(tmp_path):
    model = trained()
    model.save_weights(tmp_path / "w.npz")
    msg = refused(tmp_path / "w.npz", "format")
    assert "load_weights" in msg
    model.save(tmp_path / "m.npz")
    with pytest.raises(ValueError, match="load_model"):
        model.load_weights(tmp_path / "m.npz")


# -- loading and restoring state: each array checked ------------------------------------------
def test_one_element_params_is_not_broadcast(tmp_path):
    # the old loader assigned params[...] = file_params: one value became every weight
    refused(tampered(tmp_path, arrays={"params": np.array([0.5], np.float32)}), "params")


@pytest.mark.parametrize("bad", [
    np.full(26, np.nan, np.float32),
    np.full(26, np.inf, np.float32),
    np.zeros(26, np.complex64),
    np.zeros(26, np.float64),            # the model is float32
    np.zeros(26, np.int32),
    np.array(["x"] * 26),
    np.zeros((26, 1), np.float32),
    np.zeros(27, np.float32),
], ids=["nan", "inf", "complex", "float64", "int", "string", "2d", "long"])
def test_bad_params_are_refused(tmp_path, bad):
    refused(tampered(tmp_path, arrays={"params": bad}), "params")


def test_object_array_is_refused_without_unpickling(tmp_path):
    obj = npy(np.array([object()] * 26, dtype=object), allow_pickle=True)
    refused(tampered(tmp_path, arrays={"params": obj}), "params")


@pytest.mark.parametrize("slot", ["slot_0", "slot_1"])
def test_nan_in_a_slot_is_refused(tmp_path, slot):
    refused(tampered(tmp_path, arrays={slot: np.full(26, np.nan, np.float32)}), slot)


def test_missing_slot_is_refused(tmp_path):
    # the old loader left it as NaN
    refused(tampered(tmp_path, drop=["slot_1.npy"]), "slot_1", "missing")


def test_extra_slot_and_unexpected_member_are_refused(tmp_path):
    refused(tampered(tmp_path, arrays={"slot_2": np.zeros(26, np.float32)}), "slot_2")
    refused(tampered(tmp_path, arrays={"surprise": np.zeros(26, np.float32)}), "surprise")
    sgd = trained(optimizer=fo.optimizers.SGD(0.1))  # no slots at all
    refused(tampered(tmp_path, model=sgd, arrays={"slot_0": np.zeros(26, np.float32)}), "slot_0")


def test_missing_params_is_refused(tmp_path):
    refused(tampered(tmp_path, drop=["params.npy"]), "params", "missing")


@pytest.mark.parametrize("state", [np.zeros(4, np.uint64), np.zeros(3, np.uint64), np.ones(4, np.int64),
                                   np.ones(4, np.float64)], ids=["zeros", "short", "int64", "float"])
def test_bad_rng_state_is_refused(tmp_path, state):
    # an all-zero xoshiro state made the next shuffled fit spin forever
    refused(tampered(tmp_path, arrays={"rng_state": state}), "rng_state")


@pytest.mark.parametrize("steps", [-1, 2 ** 53 + 1, 2 ** 63 - 1, 1.5, 3.0, "3", True, None, [3], {"n": 3}])
def test_bad_step_count_is_refused(tmp_path, steps):
    refused(tampered(tmp_path, header=lambda h: h.update(iterations=steps)), "iterations")


@pytest.mark.parametrize("steps", [0, 2 ** 53])
def test_step_count_range_ends_load(tmp_path, steps):
    model = fo.load_model(tampered(tmp_path, header=lambda h: h.update(iterations=steps)))
    assert model.optimizer.iterations == steps and type(model.optimizer.iterations) is int


@pytest.mark.parametrize("edit,field", [
    (lambda h: h["optimizer"]["config"].update(learning_rate=-1.0), "optimizer"),
    (lambda h: h["optimizer"]["config"].update(beta_1=1.5), "optimizer"),
    (lambda h: h["optimizer"]["config"].update(bogus=1), "optimizer"),
    (lambda h: h["optimizer"].update(class_name="Nadam"), "optimizer"),
    (lambda h: h.update(optimizer="adam"), "optimizer"),
    (lambda h: h["compile"].update(loss="hinge"), "compile"),
    (lambda h: h["compile"].update(metrics=["auc"]), "compile"),
    (lambda h: h["model"]["layers"][0].update(units=-1), "model.layers[0]"),
    (lambda h: h["model"]["layers"][0].update(units="4"), "model.layers[0]"),
    (lambda h: h["model"]["layers"][1].update(activation="no_such_activation"), "model.layers[1]"),
    (lambda h: h["model"]["layers"][1].update(extra=True), "model.layers[1]"),
    (lambda h: h["model"]["layers"].append(7), "model.layers[2]"),
    (lambda h: h["model"].update(dtype="float16"), "model.dtype"),
    (lambda h: h["model"].update(input_dim=0), "model.input_dim"),
    (lambda h: h["model"].update(input_dim=4), "params"),        # the architecture no longer fits the arrays
    (lambda h: h["model"].update(seed=-2), "model.seed"),
    (lambda h: h["model"].update(name=5), "model.name"),
    (lambda h: h["model"].pop("layers"), "model"),
    (lambda h: h.update(extra=1), "header"),
    (lambda h: h.pop("init_rng"), "header"),
    (lambda h: h.update(init_rng={"bit_generator": "PCG64", "state": 5}), "init_rng"),
    (lambda h: h.update(init_rng=None), "init_rng"),
])
def test_bad_header_fields_are_refused(tmp_path, edit, field):
    refused(tampered(tmp_path, header=edit), field)


# -- only ValueError or TypeError leave load_model ----------------------------------------------
def test_errors_are_value_errors_naming_the_file(tmp_path):
    good = tmp_path / "good.npz"
    trained().save(good)
    raw = good.read_bytes()
    cases = {
        "random.npz": (os.urandom(2000), "archive"),                      # BadZipFile
        "truncated.npz": (raw[: len(raw) // 2], "archive"),               # BadZipFile / EOFError
        "empty.npz": (b"", "archive"),
        "nomembers.npz": (zip_bytes([]), "header"),                       # KeyError before
    }
    members = read_members(good)
    variants = {
        "deep.npz": b"[" * 100000 + b"]" * 100000,                        # RecursionError
        "bigint.npz": b'{"format_version": ' + b"9" * 5000 + b"}",         # int digits limit
        "overflow.npz": None,                                             # OverflowError (1e400)
        "utf8.npz": b'{"format": "\xff\xfe"}',                             # UnicodeDecodeError
        "json.npz": b'{"format": ',                                        # JSONDecodeError
        "nan.npz": b'{"format_version": NaN}',
    }
    for name, text in variants.items():
        m = dict(members)
        if text is None:
            h = json.loads(m["fastopt.json"])
            h["model"]["layers"][0]["units"] = 1e400
            text = json.dumps(h).replace("Infinity", "1e400").encode()
        m["fastopt.json"] = text
        cases[name] = (zip_bytes([(n, b, 0, None, None) for n, b in m.items()]), "")
    # a member whose stored bytes do not match its CRC
    m = dict(members)
    cases["crc.npz"] = (zip_bytes([(n, b, 0, (0 if n == "params.npy" else None), None) for n, b in m.items()]),
                        "params")
    for name, (content, field) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        refused(path, field)
    refused(tmp_path / "missing.npz", "no such file")
    refused(tmp_path, "")  # a directory
    with pytest.raises(TypeError, match="path"):
        fo.load_model(3)


# -- memory bounded by the header's sizes -------------------------------------------------------
_BOMB = 550 << 20


@pytest.fixture(scope="module")
def bomb_stream():
    """Raw deflate of an .npy header followed by 550 MiB of zeros, about 550 KiB,
    built from repeated full-flush segments (no 550 MiB buffer here)."""
    head = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    head["shape"] = ((_BOMB - 128) // 4,)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, head)
    header = buf.getvalue()

    def segment(data, mode=zlib.Z_FULL_FLUSH):
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(mode)

    zeros = segment(bytes(1 << 20))
    tail = bytes(_BOMB - len(header) - ((_BOMB - len(header)) >> 20 << 20))
    stream = segment(header) + zeros * ((_BOMB - len(header)) >> 20) + segment(tail, zlib.Z_FINISH)
    crc = zlib.crc32(header)
    one_mib = bytes(1 << 20)
    for _ in range((_BOMB - len(header)) >> 20):
        crc = zlib.crc32(one_mib, crc)
    crc = zlib.crc32(tail, crc)
    return stream, crc, _BOMB


def _bounded_refusal(path, field):
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        refused(path, field)
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"loading peaked at {peak / 2**20:.0f} MiB"
    assert elapsed < 5


@pytest.mark.parametrize("member", ["params.npy", "fastopt.json"])
def test_zip_bomb_is_refused_before_decompressing(tmp_path, bomb_stream, member):
    stream, crc, size = bomb_stream
    good = tmp_path / "good.npz"
    trained().save(good)
    members = read_members(good)
    entries = [(n, b, 0, None, None) for n, b in members.items() if n != member]
    entries.append((member, stream, 8, crc, size))
    path = tmp_path / "bomb.npz"
    path.write_bytes(zip_bytes(entries))
    assert path.stat().st_size < 600 << 10
    # the member honestly declares 550 MiB: more than the architecture (or a header) can need
    _bounded_refusal(path, "params" if member == "params.npy" else "header")


def test_zip_bomb_lying_about_its_size_is_read_with_a_bound(tmp_path, bomb_stream):
    stream, crc, _ = bomb_stream
    good = tmp_path / "good.npz"
    trained().save(good)
    members = read_members(good)
    declared = len(members["params.npy"])  # the size the architecture implies
    entries = [(n, b, 0, None, None) for n, b in members.items() if n != "params.npy"]
    entries.append(("params.npy", stream, 8, crc, declared))
    path = tmp_path / "liar.npz"
    path.write_bytes(zip_bytes(entries))
    _bounded_refusal(path, "params")


def test_deflated_archive_loads(tmp_path):
    # members written compressed (as numpy.savez_compressed would) are read too
    good = tmp_path / "good.npz"
    model = trained()
    model.save(good)
    path = tmp_path / "deflated.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in read_members(good).items():
            z.writestr(name, data)
    same_model(fo.load_model(path), model)


# -- saving: suffixes ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,match", [("m.keras", "Keras"), ("m.h5", "HDF5"), ("m.weights.h5", "HDF5"),
                                        ("m.hdf5", "HDF5"), ("m.bin", "unknown suffix"),
                                        ("m.pkl", "unknown suffix")])
def test_save_refuses_other_formats(tmp_path, name, match):
    model = trained()
    for save in (model.save, model.save_weights):
        with pytest.raises(ValueError, match=match):
            save(tmp_path / name)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["m.npz", "m", "dir.v2/m.NPZ"])
def test_save_accepts_npz_or_no_suffix(tmp_path, name):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    model = trained()
    model.save(path)
    assert path.exists()
    same_model(fo.load_model(path), model)


def test_overwrite_false(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        trained().save(path, overwrite=False)
    assert path.read_bytes() == b"keep"


# -- saving: atomic and durable ------------------------------------------------------------------
def test_save_fsyncs_the_file_then_the_directory(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        st = os.fstat(fd)
        synced.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", path.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    trained().save(path)
    # the file before the rename (target not there yet), the directory after it
    assert synced == [("file", False), ("dir", True)]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError, MemoryError])  # and the old file stays
def test_interrupted_save_removes_its_temporary(tmp_path, monkeypatch, error):
    path = tmp_path / "m.npz"
    old = trained(seed=1)
    old.save(path)
    before = path.read_bytes()

    def broken(f, *a, **k):
        f.write(b"partial")
        raise error()

    monkeypatch.setattr(np.lib.format, "write_array", broken)
    with pytest.raises(error):
        trained(seed=2).save(path)
    with pytest.raises(error):
        trained(seed=2).save_weights(tmp_path / "w.npz")
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    assert path.read_bytes() == before


def _run(code, **kw):
    env = dict(os.environ)
    here = os.path.dirname(os.path.dirname(os.path.abspath(fo.__file__)))
    env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env, **kw)


def test_killed_save_temporary_is_ignored_then_cleaned(tmp_path):
    path = tmp_path / "m.npz"
    old = trained(seed=1)
    old.save(path)
    proc = _run(f"""
        import time, numpy as np, fastopt as fo
        def stuck(f, *a, **k):
            f.write(b"partial")
            f.flush()
            print("writing", flush=True)
            time.sleep(120)
        np.lib.format.write_array = stuck
        fo.Sequential([fo.Dense(2, input_shape=(3,))], seed=0).save({str(path)!r})
    """, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
    stale = [n for n in os.listdir(tmp_path) if n.startswith(saving.TEMP_PREFIX)]
    assert len(stale) == 1 and not stale[0].endswith(".npz")  # no glob for *.npz finds it
    same_model(fo.load_model(path), old)  # the target is the old file, whole

    # temporaries of live processes and of other hosts are left alone
    live = f"{saving.TEMP_PREFIX}{os.getppid()}-{saving._HOST}-aaaaaaaaaaaa.tmp"
    other_host = f"{saving.TEMP_PREFIX}{proc.pid}-00000000-bbbbbbbbbbbb.tmp"
    (tmp_path / live).write_bytes(b"x")
    (tmp_path / other_host).write_bytes(b"x")
    new = trained(seed=2)
    new.save(tmp_path / "other.npz")  # any later save in the directory cleans up
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz", "other.npz", live, other_host])
    same_model(fo.load_model(path), old)


def test_save_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "m.npz"
    trained(seed=1).save(target)
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    model = trained(seed=2)
    model.save(link)
    assert link.is_symlink() and os.readlink(link) == str(target)
    same_model(fo.load_model(target), model)
    assert sorted(os.listdir(real_dir)) == ["m.npz"] and sorted(os.listdir(tmp_path)) == ["link.npz", "real"]
    # a dangling link: its target is created
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(real_dir / "new.npz")
    model.save_weights(dangling)
    assert dangling.is_symlink() and (real_dir / "new.npz").is_file()


def test_read_only_target_is_refused(tmp_path):
    path = tmp_path / "m.npz"
    old = trained(seed=1)
    old.save(path)
    before = path.read_bytes()
    path.chmod(0o444)
    try:
        for save in (trained(seed=2).save, trained(seed=2).save_weights):
            with pytest.raises(PermissionError, match="read-only"):
                save(path)
        assert path.read_bytes() == before
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
        assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    finally:
        path.chmod(0o644)


def test_directory_target_is_refused(tmp_path):
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(IsADirectoryError):
        trained().save(tmp_path / "d.npz")
    assert sorted(os.listdir(tmp_path)) == ["d.npz"]


def test_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"")
    path.chmod(0o640)
    trained().save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_unwritable_configuration_fails_before_any_file(tmp_path):
    model = make_model(optimizer=fo.optimizers.SGD(lambda: 0.1))
    with pytest.raises((TypeError, ValueError)):
        model.save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# -- save_weights / load_weights -------------------------------------------------------------------
@pytest.mark.parametrize("src,dst", [("float32", "float32"), ("float64", "float32"), ("float32", "float64")])
def test_weights_round_trip(tmp_path, src, dst):
    model = trained(src)
    model.save_weights(tmp_path / "w.npz")
    other = make_model(dst, seed=9)
    other.load_weights(tmp_path / "w.npz")
    for a, b in zip(other.get_weights(), model.get_weights()):
        assert a.dtype == np.dtype(dst)
        np.testing.assert_array_equal(a, b.astype(dst))
    # an unbuilt model with the same layers is built for the file's input width
    unbuilt = fo.Sequential([fo.Dense(4, activation="tanh"), fo.Dense(2)], dtype=src)
    unbuilt.load_weights(tmp_path / "w.npz")
    for a, b in zip(unbuilt.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_load_weights_refuses_and_changes_nothing(tmp_path):
    model = trained()
    model.save_weights(tmp_path / "w.npz")
    members = read_members(tmp_path / "w.npz")
    target = trained(seed=5)
    before = target.get_weights()
    slots = [None if s is None else s.copy() for s in target._slots]

    def variant(name, edit=None, arrays=None, drop=()):
        m = dict(members)
        if edit:
            h = json.loads(m["fastopt.json"])
            edit(h)
            m["fastopt.json"] = json.dumps(h).encode()
        for k, a in (arrays or {}).items():
            m[k + ".npy"] = npy(a)
        for k in drop:
            del m[k]
        path = tmp_path / name
        write_members(path, m)
        return path

    bad = [
        variant("nan.npz", arrays={"weight_1": np.full(4, np.nan, np.float32)}),
        variant("shape.npz", arrays={"weight_0": np.zeros((3, 5), np.float32)}),
        variant("one.npz", arrays={"weight_0": np.zeros(1, np.float32)}),
        variant("dtype.npz", arrays={"weight_0": np.zeros((3, 4), np.float64)}),
        variant("complex.npz", arrays={"weight_0": np.zeros((3, 4), np.complex64)}),
        variant("missing.npz", drop=["weight_3.npy"]),
        variant("extra.npz", arrays={"weight_4": np.zeros(2, np.float32)}),
        variant("shapes.npz", edit=lambda h: h.update(shapes=[[3, 5], [5], [5, 2], [2]])),
        variant("version.npz", edit=lambda h: h.update(format_version=7)),
        variant("dtypefield.npz", edit=lambda h: h.update(dtype="int8")),
    ]
    smaller = fo.Sequential([fo.Dense(3, input_shape=(3,))])
    smaller.save_weights(tmp_path / "small.npz")
    bad.append(tmp_path / "small.npz")
    for path in bad:
        with pytest.raises(ValueError, match=repr(str(path))):
            target.load_weights(path)
        for a, b in zip(target.get_weights(), before):
            np.testing.assert_array_equal(a, b)
        for s, t in zip(target._slots, slots):
            if s is not None:
                np.testing.assert_array_equal(s, t)
    unbuilt = fo.Sequential([fo.Dense(5), fo.Dense(2)])
    with pytest.raises(ValueError, match="shapes"):
        unbuilt.load_weights(tmp_path / "w.npz")
    assert not unbuilt.built


def test_save_weights_of_unbuilt_model():
    with pytest.raises(ValueError, match="not built"):
        fo.Sequential([fo.Dense(2)]).save_weights("never.npz")
    assert not os.path.exists("never.npz")


# -- pickling ----------------------------------------------------------------------------------------
def test_pickle_mid_training_continues_bit_for_bit():
    x, y = data()
    xv, yv = data(15, seed=1)
    for dtype in ("float32", "float64"):
        for opt in (fo.optimizers.Adam(fo.schedules.ExponentialDecay(0.02, 5, 0.7), amsgrad=True),
                    fo.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
                    fo.optimizers.SGD(0.05, momentum=0.9, nesterov=True)):
            model = make_model(dtype, optimizer=opt)
            model.fit(x, y, epochs=3, batch_size=8, verbose=0)
            copy_ = pickle.loads(pickle.dumps(model))
            same_model(copy_, model)
            histories = [m.fit(x, y, epochs=2, batch_size=8, validation_data=(xv, yv), verbose=0).history
                         for m in (model, copy_)]
            assert histories[0] == histories[1]
            same_model(copy_, model)


def test_pickle_inside_a_callback_during_fit():
    x, y = data()
    snapshots = {}

    class Snapshot(fo.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                snapshots["model"] = pickle.dumps(self.model)

    model = make_model()
    model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[Snapshot()])
    resumed = pickle.loads(snapshots["model"])
    assert resumed.optimizer.iterations == 2 * 5
    resumed.fit(x, y, epochs=4, batch_size=8, verbose=0, initial_epoch=2)
    same_model(resumed, model)


@pytest.mark.parametrize("state", ["empty", "unbuilt", "unbuilt_compiled", "built", "compiled", "stepped"])
def test_pickle_and_deepcopy_every_state(state):
    layers = [fo.Dense(3, activation="relu"), fo.Dense(1)]
    model = {"empty": lambda: fo.Sequential(),
             "unbuilt": lambda: fo.Sequential(layers),
             "unbuilt_compiled": lambda: fo.Sequential(layers),
             "built": lambda: fo.Sequential([fo.Dense(3, input_shape=(3,)), fo.Dense(1)]),
             "compiled": lambda: fo.Sequential([fo.Dense(3, input_shape=(3,)), fo.Dense(1)]),
             "stepped": lambda: make_model()}[state]()
    if state in ("unbuilt_compiled", "compiled"):
        model.compile(fo.optimizers.Adagrad(0.1), "mse")
    if state == "stepped":
        x, y = data(10)
        loss, grads = model.compute_gradients(x, y)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(model, protocol))
        assert back.built == model.built
        if model.built:
            same_model(back, model)
        else:
            assert back.get_config() == model.get_config()
    clone = copy.deepcopy(model)
    assert clone is not model
    if model.built:
        same_model(clone, model)
        assert not np.shares_memory(clone._params, model._params)
    if state in ("unbuilt", "unbuilt_compiled", "compiled", "stepped"):
        # both go on identically, including a build from the same initializer state
        x, y = data(12)
        if model.optimizer is None:
            model.compile("sgd", "mse")
            clone.compile("sgd", "mse")
        y = y[:, :model.layers[-1].units]
        for m in (model, clone):
            m.fit(x, y, epochs=2, batch_size=4, verbose=0)
        same_model(clone, model)


def test_unpickled_unbuilt_unseeded_model_builds_the_same_weights():
    model = fo.Sequential([fo.Dense(4), fo.Dense(1)])  # no seed: the initializer state must travel
    clone = pickle.loads(pickle.dumps(model))
    model.build((None, 3))
    clone.build((None, 3))
    same_model(clone, model)


def test_pickle_of_a_subclass_keeps_the_class():
    class MyModel(fo.Sequential):
        pass

    model = MyModel([fo.Dense(2, input_shape=(3,))], seed=1)
    clone = copy.deepcopy(model)
    assert type(clone) is MyModel
    same_model(clone, model)


def test_pickle_holds_no_pickled_arrays():
    blob = pickle.dumps(trained())
    assert b"numpy" not in blob and b"ndarray" not in blob


def test_corrupt_pickle_raises_value_error():
    blob = saving.model_to_bytes(trained())
    with pytest.raises(ValueError, match="serialized model"):
        saving.model_from_bytes(blob[:100])
    with pytest.raises(TypeError):
        saving.model_from_bytes("text")


@pytest.mark.parametrize("options", [dict(use_ema=True, ema_momentum=0.9), dict(gradient_accumulation_steps=2)],
                         ids=["ema", "accumulation"])
def test_every_optimizer_slot_round_trips(tmp_path, options):
    """State beyond the rule's own slots (moving averages, gradient accumulators) is saved and
    loaded too, so training resumes bit for bit."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))

    def make():
        m = fo.Sequential([fo.Dense(4, activation="tanh", input_shape=(3,)), fo.Dense(1)], seed=1)
        m.compile(fo.optimizers.Adam(0.01, **options), "mse")
        return m

    model = make()
    model.fit(x, y, epochs=3, batch_size=6, verbose=0, shuffle=False)
    assert sum(s is not None for s in model._slots) > 2
    model.save(tmp_path / "m.npz")
    loaded = fo.load_model(tmp_path / "m.npz")
    for a, b in zip(model._slots, loaded._slots):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)
    for m in (model, loaded):
        m.fit(x, y, epochs=2, batch_size=6, verbose=0, shuffle=False)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def _accumulating(cycle=3):
    m = fo.Sequential([fo.Dense(4, activation="tanh", input_shape=(3,)), fo.Dense(1)], seed=1)
    m.compile(fo.optimizers.Adam(0.01, gradient_accumulation_steps=cycle), "mse")
    return m


@pytest.mark.parametrize("how", ["save", "pickle"])
def test_a_model_saved_mid_accumulation_cycle_resumes_mid_cycle(tmp_path, how):
    """4 calls into cycles of 3: the copy has the one accumulated gradient and the
    call count, so its next update comes when the original's does, bit for bit."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    model = _accumulating()
    model.fit(x, y, epochs=1, batch_size=5, verbose=0)
    assert int(model.optimizer._step[0]) == 4 and model.optimizer.iterations == 1
    if how == "save":
        model.save(tmp_path / "m.npz")
        copy = fo.load_model(tmp_path / "m.npz")
        assert json.loads(read_members(tmp_path / "m.npz")["fastopt.json"])["accumulated_steps"] == 1
    else:
        copy = pickle.loads(pickle.dumps(model))
    assert int(copy.optimizer._step[0]) == 4
    for m in (model, copy):
        m.fit(x, y, epochs=2, batch_size=5, verbose=0)
        assert m.optimizer.iterations == 4
    for a, b in zip(model.get_weights() + list(model._slots), copy.get_weights() + list(copy._slots)):
        if a is not None:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("value", [-1, 3, 1.0, "1", None])
def test_bad_accumulated_steps_are_refused(tmp_path, value):
    path = tampered(tmp_path, model=_accumulating(), header=lambda h: h.update(accumulated_steps=value))
    refused(path, "accumulated_steps")


def test_accumulated_steps_without_accumulation_are_refused(tmp_path):
    refused(tampered(tmp_path, header=lambda h: h.update(accumulated_steps=0)), "accumulated_steps")
    refused(tampered(tmp_path, model=make_model(), header=lambda h: h.update(accumulated_steps=0, compile=None,
                                                                            optimizer=None, iterations=None)),
            "optimizer")


def test_a_file_without_accumulated_steps_starts_a_cycle(tmp_path):
    """Files written before the field existed: the count is at a cycle's start."""
    rng = np.random.default_rng(0)
    model = _accumulating()
    model.fit(rng.standard_normal((20, 3)), rng.standard_normal(20), epochs=1, batch_size=5, verbose=0)
    path = tampered(tmp_path, model=model, header=lambda h: h.pop("accumulated_steps"))
    assert int(fo.load_model(path).optimizer._step[0]) == 3


def test_strict_deserialize_refuses_what_from_config_would_drop():
    """load_model reads the optimizer strictly, without a (process-wide) warnings filter."""
    cfg = fo.optimizers.serialize(fo.optimizers.Adam(0.01))
    cfg["config"]["jit_compile"] = True
    with pytest.warns(UserWarning, match="jit_compile"):
        assert isinstance(fo.optimizers.deserialize(cfg), fo.optimizers.Adam)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="jit_compile"):
            fo.optimizers.deserialize(cfg, strict=True)
