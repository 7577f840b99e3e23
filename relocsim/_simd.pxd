# cython: language_level=3
"""Cython declarations of ``relocsim/src/rs_simd.h``, the C shared by relocsim's kernels.

Another kernel reuses the vectorised ``exp`` and the counter-based random stream with::

    from relocsim._simd cimport rs_exp_nonpos, rs_firm_key, rs_round_key, rs_draw, rs_uniform

and builds with the project root on its include path (``setup.py``'s ``kernel_extension``).
Every function is ``static inline`` C: nothing is imported at run time.
"""

from libc.stdint cimport int64_t, uint64_t


cdef extern from "relocsim/src/rs_simd.h" nogil:
    int rs_openmp() noexcept
    # SplitMix64 stream, twin of relocsim/_rng.py
    uint64_t rs_mix(uint64_t z) noexcept
    uint64_t rs_firm_key(uint64_t seed, uint64_t year, uint64_t id) noexcept
    uint64_t rs_round_key(uint64_t key, uint64_t r) noexcept
    uint64_t rs_draw(uint64_t rk, uint64_t slot) noexcept
    double rs_uniform(uint64_t h) noexcept
    int64_t rs_index(uint64_t h, int64_t m) noexcept
    # exp for x <= 0 (0 below -708), vectorisable; its baseline-ISA loop over an array
    double rs_exp_nonpos(double x) noexcept
    void rs_exp_array_impl(const double *x, double *out, Py_ssize_t n) noexcept
    # 0 baseline, 1 AVX2+FMA, 2 AVX-512: the best level this CPU supports
    int rs_best_isa() noexcept
