/* Shared C building blocks of relocsim's compiled kernels (header-only, every symbol static).
 *
 *   - rs_openmp(): whether the translation unit was compiled with OpenMP;
 *   - the counter-based random stream (SplitMix64 finaliser), twin of relocsim/_rng.py;
 *   - rs_exp_nonpos(): a branch-free exp for x <= 0 that GCC vectorises without -ffast-math,
 *     and rs_exp_array_impl(), its loop over a contiguous array;
 *   - the per-function instruction-set attributes and the CPU check used to pick a variant
 *     at import (RS_TARGET_AVX2, RS_TARGET_AVX512, rs_best_isa()).
 *
 * From Cython: `from relocsim._simd cimport rs_exp_nonpos, rs_draw, ...` (relocsim/_simd.pxd
 * declares them) and build the extension with the project root on the include path (see
 * setup.py). Compile with -O3 -fno-math-errno -fno-trapping-math and -fopenmp or
 * -fopenmp-simd, never -ffast-math (GCC then links crtfastmath.o, which sets flush-to-zero
 * for the whole Python process).
 */
#ifndef RELOCSIM_RS_SIMD_H
#define RELOCSIM_RS_SIMD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RS_INLINE static inline __attribute__((always_inline))

static inline int rs_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* ---- counter-based random numbers (twin of relocsim/_rng.py) ---- */
#define RS_G 0x9E3779B97F4A7C15ULL
static inline uint64_t rs_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline uint64_t rs_firm_key(uint64_t seed, uint64_t year, uint64_t id) {
    uint64_t k = rs_mix(seed + RS_G);
    k = rs_mix((k ^ year) + RS_G);
    return rs_mix((k ^ id) + RS_G);
}
static inline uint64_t rs_round_key(uint64_t key, uint64_t r) {
    return rs_mix((key ^ r) + RS_G);
}
static inline uint64_t rs_draw(uint64_t rk, uint64_t slot) {
    return rs_mix(rk + (slot + 1) * RS_G);
}
/* uniform double in [0, 1) from the top 53 bits */
static inline double rs_uniform(uint64_t h) { return (double)(h >> 11) * 0x1.0p-53; }
/* index in [0, m) by the multiply-shift of the top 32 bits (m < 2**32) */
static inline int64_t rs_index(uint64_t h, int64_t m) {
    return (int64_t)(((h >> 32) * (uint64_t)m) >> 32);
}

/* ---- vectorisable exp for x <= 0 ----
   Cody-Waite reduction x = k ln2 + r, |r| <= ln2/2; degree-11 polynomial (Taylor
   series of degree 17 economised with Chebyshev polynomials on |r| <= 0.3466,
   truncation error ~1e-18 relative); scaling by adding k to the exponent bits. Below
   -708 (and for -inf) it returns 0 (the garbage computed there is masked out): the
   callers subtract the maximum first, so such terms are below 1e-307 of the sum.
   No branches, no libm call: GCC vectorises it. */
RS_INLINE double rs_exp_nonpos(double x) {
    const double shifter = 0x1.8p52;
    double kd = x * 0x1.71547652b82fep0 + shifter;
    uint64_t ki;
    memcpy(&ki, &kd, 8);
    kd -= shifter;
    double r = x - kd * 6.93147180369123816490e-01;
    r = r - kd * 1.90821492927058770002e-10;
    double p = 0x1.af7868d2a183bp-26;
    p = p * r + 0x1.28b40e508f611p-22;
    p = p * r + 0x1.71dde763b593cp-19;
    p = p * r + 0x1.a01991a2e86afp-16;
    p = p * r + 0x1.a01a01b80532fp-13;
    p = p * r + 0x1.6c16c187ff832p-10;
    p = p * r + 0x1.111111110db6cp-7;
    p = p * r + 0x1.555555554f0bcp-5;
    p = p * r + 0x1.5555555555563p-3;
    p = p * r + 0x1.0000000000011p-1;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t pi;
    memcpy(&pi, &p, 8);
    pi += ki << 52;
    double res;
    memcpy(&res, &pi, 8);
    return x < -708.0 ? 0.0 : res;
}

/* out[j] <- exp(x[j]) for x[j] <= 0, j in [0, n). Inline it into a function carrying an
   RS_TARGET_* attribute to get that instruction set's vector code. */
RS_INLINE void rs_exp_array_impl(const double *restrict x, double *restrict out, ptrdiff_t n) {
    #pragma omp simd
    for (ptrdiff_t j = 0; j < n; j++) out[j] = rs_exp_nonpos(x[j]);
}

/* ---- instruction sets: 0 baseline x86-64 (SSE2), 1 AVX2+FMA, 2 AVX-512 (F, DQ, VL) ----
   A kernel defines one copy of its loops per level with these attributes and picks one at
   import with rs_best_isa() (see relocsim/src/rs_choice.h for the pattern). */
#if defined(__x86_64__) && defined(__GNUC__)
#define RS_X86_DISPATCH 1
#define RS_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define RS_TARGET_AVX512 \
    __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma,prefer-vector-width=512")))
static inline int rs_best_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
        return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
    return 0;
}
#else
#define RS_X86_DISPATCH 0
#define RS_TARGET_AVX2
#define RS_TARGET_AVX512
static inline int rs_best_isa(void) { return 0; }
#endif
/* names of the levels, as reported by relocsim._core.ISA */
#define RS_ISA_NAME_0 "baseline"
#define RS_ISA_NAME_1 "avx2+fma"
#define RS_ISA_NAME_2 "avx512"

#endif /* RELOCSIM_RS_SIMD_H */
