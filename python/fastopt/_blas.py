"""Make the OpenBLAS that fastopt._core links against loadable.

The extension finds libscipy_openblas through its rpath when fastopt and
scipy_openblas32 are installed side by side; loading the library once through
scipy_openblas32 first also covers other layouts (in-place builds, split
site-packages).
"""
import ctypes
import os


def preload() -> None:
    try:
        import scipy_openblas32 as ob
    except ImportError:  # built without BLAS
        return
    libdir = ob.get_lib_dir()
    for name in sorted(os.listdir(libdir)) if os.path.isdir(libdir) else ():
        if name.startswith("lib" + ob.get_library()) and ".so" in name or name.endswith(".dylib"):
            try:
                ctypes.CDLL(os.path.join(libdir, name), mode=ctypes.RTLD_GLOBAL)
            except OSError:
                pass
            return
