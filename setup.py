"""Build the compiled kernels of relocsim (``relocsim._core``, the location choice).

The C they share lives in ``relocsim/src/*.h`` (declared for Cython in ``relocsim/_simd.pxd``)
and is included as ``"relocsim/src/<name>.h"``, so every extension gets the project root on
its include path: add a kernel with ``kernel_extension("relocsim._name", "relocsim/_name.pyx")``.

``-fopenmp`` is probed by compiling and linking a tiny program; without it the kernel is
built serially (``-fopenmp-simd`` still enables the ``omp simd`` loop pragmas). The flags
deliberately avoid ``-ffast-math``: GCC links ``crtfastmath.o`` into shared objects built
with it, which sets flush-to-zero for the whole Python process. The vector loops get
their instruction sets from per-function ``target`` attributes, picked at import time.

Environment variables:
    RELOCSIM_NO_OPENMP=1: skip the probe and build serially.
    RELOCSIM_CFLAGS: extra compiler flags appended (e.g. ``-march=native``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

GATHER_FLAGS = ["-mtune-ctrl=use_gather_4parts,use_gather"]
BASE_FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fno-semantic-interposition"]


def _compiler() -> list[str]:
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(cc)


def _compiles(src: str, flags: list[str]) -> bool:
    """Return True if the C compiler compiles and links ``src`` with ``flags``."""
    tmp = tempfile.mkdtemp()
    try:
        c_file = os.path.join(tmp, "probe.c")
        with open(c_file, "w") as fh:
            fh.write(src)
        cmd = [*_compiler(), "-Werror", *flags, c_file, "-o", os.path.join(tmp, "probe")]
        res = subprocess.run(cmd, capture_output=True, check=False)
        return res.returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _has_openmp() -> bool:
    """Return True if the C compiler can compile and link an OpenMP program."""
    if os.environ.get("RELOCSIM_NO_OPENMP") == "1" or sys.platform == "win32":
        return False
    src = (
        "#include <omp.h>\n"
        "int main(void) { int n = 0;\n"
        "#pragma omp parallel reduction(+:n)\n"
        "n += 1; return omp_get_max_threads() > 0 && n > 0 ? 0 : 1; }\n"
    )
    return _compiles(src, ["-fopenmp"])


openmp = _has_openmp()
compile_args = [*BASE_FLAGS, "-fopenmp" if openmp else "-fopenmp-simd"]
# GCC's generic tuning never emits gather instructions; the sampled-alternative loop
# needs them in its AVX2 / AVX-512 variants (GCC only; other compilers skip the flag)
if _compiles("int main(void) { return 0; }\n", GATHER_FLAGS):
    compile_args += GATHER_FLAGS
compile_args += shlex.split(os.environ.get("RELOCSIM_CFLAGS", ""))
link_args = ["-fopenmp"] if openmp else []
print(f"relocsim: building _core with OpenMP {'on' if openmp else 'off'}", file=sys.stderr)

ROOT = os.path.dirname(os.path.abspath(__file__))
HEADERS = sorted(
    os.path.join("relocsim", "src", f)
    for f in os.listdir(os.path.join(ROOT, "relocsim", "src"))
    if f.endswith(".h")
)


def kernel_extension(name: str, source: str) -> Extension:
    """A Cython/OpenMP extension built with the kernel flags and the shared C headers."""
    return Extension(
        name,
        sources=[source],
        include_dirs=[np.get_include(), ROOT],
        depends=HEADERS,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
        libraries=[] if sys.platform == "win32" else ["m"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )


extensions = [
    kernel_extension("relocsim._core", "relocsim/_core.pyx"),
    # the estimator's likelihood kernel (relocsim.estimation)
    kernel_extension("relocsim._likelihood", "relocsim/_likelihood.pyx"),
]
setup(
    ext_modules=cythonize(
        extensions, include_path=[ROOT], compiler_directives={"language_level": "3"}
    )
)
