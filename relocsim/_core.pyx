# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled hot loop of the nested-logit location choice (see ``relocsim.choice``).

Only the loop lives here. ``relocsim.choice`` validates and converts every input,
sorts the alternatives by region (so that a nest is one or two contiguous ranges,
each padded with unavailable slots to a multiple of the vector width) and
allocates the outputs and the per-thread scratch space; ``relocsim._reference`` is the
NumPy specification this module reproduces draw for draw.

Per firm and round there is one fused pass over a per-thread buffer of M doubles:
utilities and per-nest maxima, exclusions, ``exp(u - max)`` with running sums, the
upper-level draw and a blocked search for the drawn alternative. No N x M matrix is
ever built. The vector loops are small C functions (below) compiled three times --
baseline x86-64, AVX2+FMA and AVX-512 -- and picked at import time from the CPU's
features; ``exp`` is an inline Cody-Waite + degree-11 polynomial that GCC vectorises
at ``-O3`` without ``-ffast-math`` (so no ``crtfastmath.o`` is linked and subnormals
keep working in the host process).
"""

from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY, exp, log
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

cdef extern from *:
    """
    #include <math.h>
    #include <stddef.h>
    #include <stdint.h>
    #include <string.h>

    static int rs_openmp(void) {
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
    static inline double rs_uniform(uint64_t h) { return (double)(h >> 11) * 0x1.0p-53; }
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
    #define RS_INLINE static inline __attribute__((always_inline))
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

    /* utilities of alternatives [lo, hi) into buf; returns their maximum. The maximum is
       kept in RS_LANES independent lanes (4 AVX-512 vectors) so that the loop is not
       bound by the latency of one max chain; the remainder runs in a plain simd loop. */
    #define RS_LANES 32
    #define RS_FILL_LOOP(FIRST, LAST, U) \
        for (; j + RS_LANES <= (LAST); j += RS_LANES) { \
            _Pragma("omp simd") \
            for (int q = 0; q < RS_LANES; q++) { \
                ptrdiff_t jj = j + q; \
                double u = U; \
                buf[jj] = u; \
                acc[q] = u > acc[q] ? u : acc[q]; \
            } \
        } \
        _Pragma("omp simd reduction(max:m)") \
        for (ptrdiff_t jj = j; jj < (LAST); jj++) { \
            double u = U; \
            buf[jj] = u; \
            m = u > m ? u : m; \
        }
    RS_INLINE double rs_fill_impl(double *restrict buf, const double *restrict w,
                                  const double *restrict price, const double *restrict tt,
                                  const double *restrict cap, double area, double cl,
                                  double cd, double off, ptrdiff_t lo, ptrdiff_t hi) {
        double acc[RS_LANES];
        double m = -INFINITY;
        for (int q = 0; q < RS_LANES; q++) acc[q] = -INFINITY;
        ptrdiff_t j = lo;
        if (cap) {
            RS_FILL_LOOP(lo, hi, (cap[jj] >= area ? w[jj] - cl * price[jj] - cd * tt[jj] - off
                                                  : -INFINITY))
        } else {
            RS_FILL_LOOP(lo, hi, w[jj] - cl * price[jj] - cd * tt[jj] - off)
        }
        #pragma omp simd reduction(max:m)
        for (int q = 0; q < RS_LANES; q++) m = acc[q] > m ? acc[q] : m;
        return m;
    }

    RS_INLINE double rs_max_impl(const double *restrict buf, ptrdiff_t lo, ptrdiff_t hi) {
        double acc[RS_LANES];
        double m = -INFINITY;
        for (int q = 0; q < RS_LANES; q++) acc[q] = -INFINITY;
        ptrdiff_t j = lo;
        for (; j + RS_LANES <= hi; j += RS_LANES) {
            #pragma omp simd
            for (int q = 0; q < RS_LANES; q++) acc[q] = buf[j + q] > acc[q] ? buf[j + q] : acc[q];
        }
        #pragma omp simd reduction(max:m)
        for (ptrdiff_t jj = j; jj < hi; jj++) m = buf[jj] > m ? buf[jj] : m;
        #pragma omp simd reduction(max:m)
        for (int q = 0; q < RS_LANES; q++) m = acc[q] > m ? acc[q] : m;
        return m;
    }

    /* buf[j] <- exp(buf[j] - mx) on [lo, hi); returns the sum */
    RS_INLINE double rs_expsum_impl(double *restrict buf, double mx, ptrdiff_t lo, ptrdiff_t hi) {
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (ptrdiff_t j = lo; j < hi; j++) {
            double v = rs_exp_nonpos(buf[j] - mx);
            buf[j] = v;
            s += v;
        }
        return s;
    }

    /* First j in [lo, hi) where the running sum (*acc + weights) exceeds target, or -1.
       Whole blocks of 16 are skipped with one independent block sum each, so the
       dependent chain is one addition per block instead of one per alternative. */
    #define RS_BLOCK 16
    RS_INLINE ptrdiff_t rs_search_impl(const double *restrict buf, ptrdiff_t lo, ptrdiff_t hi,
                                       double target, double *acc) {
        double a = *acc;
        ptrdiff_t j = lo;
        for (; j + RS_BLOCK <= hi; j += RS_BLOCK) {
            double b = 0.0;
            #pragma omp simd reduction(+:b)
            for (int q = 0; q < RS_BLOCK; q++) b += buf[j + q];
            if (a + b > target) break;
            a += b;
        }
        for (; j < hi; j++) {
            a += buf[j];
            if (a > target) { *acc = a; return j; }
        }
        *acc = a;
        return -1;
    }

    /* Sampling: draw the n sampled positions of a firm uniformly from [0, m) (sample k
       uses stream slot first + k; the layout is unpadded in this mode) into spos, their
       utilities into own[] (positions in [lo, hi), the firm's region) and oth[] (the
       others), -inf elsewhere and where unavailable; maxima into *mo / *mx */
    RS_INLINE void rs_fill_sampled_impl(double *restrict own, double *restrict oth,
                                        int64_t *restrict spos, ptrdiff_t n, uint64_t rk0,
                                        uint64_t first, int64_t m,
                                        const double *restrict w, const double *restrict price,
                                        const double *restrict tt, const double *restrict cap,
                                        int64_t lo, int64_t hi, int64_t cur,
                                        double area, double cl, double cd, double cc,
                                        double *mo, double *mx) {
        #pragma omp simd
        for (ptrdiff_t k = 0; k < n; k++)
            spos[k] = rs_index(rs_draw(rk0, first + (uint64_t)k), m);
        double a = -INFINITY, b = -INFINITY;
        /* branch-free body, one loop per capacity case: GCC vectorises it with gathers */
        #define RS_SAMPLED_LOOP(BAD) \
            _Pragma("omp simd reduction(max:a, b)") \
            for (ptrdiff_t k = 0; k < n; k++) { \
                int64_t p = spos[k]; \
                int other = (p < lo) | (p >= hi); \
                int bad = BAD; \
                double u = w[p] - cl * price[p] - cd * tt[p] - (other ? cc : 0.0); \
                double uo = (bad | other) ? -INFINITY : u; \
                double ux = (bad | !other) ? -INFINITY : u; \
                own[k] = uo; \
                oth[k] = ux; \
                a = uo > a ? uo : a; \
                b = ux > b ? ux : b; \
            }
        if (cap) {
            RS_SAMPLED_LOOP((p == cur) | (cap[p] < area))
        } else {
            RS_SAMPLED_LOOP(p == cur)
        }
        #undef RS_SAMPLED_LOOP
        *mo = a;
        *mx = b;
    }

    /* own[k] <- exp(own[k] - mo), oth[k] <- exp(oth[k] - mx) with one exp per sample
       (each sample is in one nest, the other entry is -inf and becomes 0); sums into
       *so / *sx */
    RS_INLINE void rs_expsum2_impl(double *restrict own, double *restrict oth, double mo,
                                   double mx, ptrdiff_t n, double *so, double *sx) {
        double a = 0.0, b = 0.0;
        #pragma omp simd reduction(+:a, b)
        for (ptrdiff_t k = 0; k < n; k++) {
            double uo = own[k], ux = oth[k];
            int is_own = uo > -INFINITY;
            double v = rs_exp_nonpos(is_own ? uo - mo : ux - mx);
            double vo = is_own ? v : 0.0;
            double vx = is_own ? 0.0 : v;
            own[k] = vo;
            oth[k] = vx;
            a += vo;
            b += vx;
        }
        *so = a;
        *sx = b;
    }

    /* ---- capacity lottery: sort an alternative's applicants by priority key ---- */
    typedef struct { uint64_t key; int64_t firm; } rs_applicant;

    /* Stable LSD radix sort by key (8-bit digits, passes where all digits agree are
       skipped); the applicants arrive in increasing firm order, so ties in key keep that
       order: the result is sorted by (key, firm). tmp has room for n. */
    static void rs_sort_applicants(rs_applicant *a, rs_applicant *tmp, ptrdiff_t n) {
        if (n < 2) return;
        if (n <= 24) {
            for (ptrdiff_t i = 1; i < n; i++) {
                rs_applicant x = a[i];
                ptrdiff_t j = i - 1;
                while (j >= 0 && a[j].key > x.key) { a[j + 1] = a[j]; j--; }
                a[j + 1] = x;
            }
            return;
        }
        rs_applicant *src = a, *dst = tmp;
        for (int shift = 0; shift < 64; shift += 8) {
            ptrdiff_t cnt[257];
            memset(cnt, 0, sizeof(cnt));
            for (ptrdiff_t i = 0; i < n; i++) cnt[((src[i].key >> shift) & 255) + 1]++;
            int skip = 0;
            for (int d = 1; d <= 256; d++) if (cnt[d] == n) { skip = 1; break; }
            if (skip) continue;
            for (int d = 0; d < 256; d++) cnt[d + 1] += cnt[d];
            for (ptrdiff_t i = 0; i < n; i++) dst[cnt[(src[i].key >> shift) & 255]++] = src[i];
            rs_applicant *t = src; src = dst; dst = t;
        }
        if (src != a) memcpy(a, src, (size_t)n * sizeof(rs_applicant));
    }

    /* ---- one copy of each kernel per instruction set, picked at import ---- */
    #define RS_ARGS_FILL double *restrict buf, const double *restrict w, \
        const double *restrict price, const double *restrict tt, const double *restrict cap, \
        double area, double cl, double cd, double off, ptrdiff_t lo, ptrdiff_t hi
    #define RS_ARGS_SAMPLED double *restrict own, double *restrict oth, \
        int64_t *restrict spos, ptrdiff_t n, uint64_t rk0, uint64_t first, int64_t m, \
        const double *restrict w, \
        const double *restrict price, const double *restrict tt, const double *restrict cap, \
        int64_t lo, int64_t hi, int64_t cur, double area, double cl, \
        double cd, double cc, double *mo, double *mx
    #define RS_VARIANT(SUF, ATTR) \
        ATTR static double rs_fill_##SUF(RS_ARGS_FILL) { \
            return rs_fill_impl(buf, w, price, tt, cap, area, cl, cd, off, lo, hi); } \
        ATTR static double rs_max_##SUF(const double *restrict buf, ptrdiff_t lo, ptrdiff_t hi) { \
            return rs_max_impl(buf, lo, hi); } \
        ATTR static double rs_expsum_##SUF(double *restrict buf, double mx, ptrdiff_t lo, \
                                           ptrdiff_t hi) { \
            return rs_expsum_impl(buf, mx, lo, hi); } \
        ATTR static ptrdiff_t rs_search_##SUF(const double *restrict buf, ptrdiff_t lo, \
                                              ptrdiff_t hi, double target, double *acc) { \
            return rs_search_impl(buf, lo, hi, target, acc); } \
        ATTR static void rs_fill_sampled_##SUF(RS_ARGS_SAMPLED) { \
            rs_fill_sampled_impl(own, oth, spos, n, rk0, first, m, w, price, tt, \
                                 cap, lo, hi, cur, area, cl, cd, cc, mo, mx); } \
        ATTR static void rs_expsum2_##SUF(double *restrict own, double *restrict oth, \
                                          double mo, double mx, ptrdiff_t n, double *so, \
                                          double *sx) { \
            rs_expsum2_impl(own, oth, mo, mx, n, so, sx); }

    typedef struct {
        double (*fill)(RS_ARGS_FILL);
        double (*max)(const double *restrict, ptrdiff_t, ptrdiff_t);
        double (*expsum)(double *restrict, double, ptrdiff_t, ptrdiff_t);
        ptrdiff_t (*search)(const double *restrict, ptrdiff_t, ptrdiff_t, double, double *);
        void (*fill_sampled)(RS_ARGS_SAMPLED);
        void (*expsum2)(double *restrict, double *restrict, double, double, ptrdiff_t, double *,
                        double *);
        const char *name;
    } rs_kernels;

    RS_VARIANT(base, )
    #define RS_TABLE(SUF, NAME) {rs_fill_##SUF, rs_max_##SUF, rs_expsum_##SUF, \
                                 rs_search_##SUF, rs_fill_sampled_##SUF, \
                                 rs_expsum2_##SUF, NAME}
    #if defined(__x86_64__) && defined(__GNUC__)
    RS_VARIANT(avx2, __attribute__((target("avx2,fma"))))
    RS_VARIANT(avx512, __attribute__((target("avx512f,avx512dq,avx512vl,avx2,fma,prefer-vector-width=512"))))
    static const rs_kernels rs_table[3] = {
        RS_TABLE(base, "baseline"), RS_TABLE(avx2, "avx2+fma"), RS_TABLE(avx512, "avx512")};
    static int rs_best_isa(void) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma"))
            return 2;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
        return 0;
    }
    #else
    static const rs_kernels rs_table[1] = {RS_TABLE(base, "baseline")};
    static int rs_best_isa(void) { return 0; }
    #endif
    static rs_kernels RS = RS_TABLE(base, "baseline");
    /* level < 0: best available; otherwise capped at the best available */
    static const char *rs_select_isa(int level) {
        int best = rs_best_isa();
        RS = rs_table[(level < 0 || level > best) ? best : level];
        return RS.name;
    }
    static inline double rs_fill(RS_ARGS_FILL) {
        return RS.fill(buf, w, price, tt, cap, area, cl, cd, off, lo, hi); }
    static inline double rs_max(const double *restrict buf, ptrdiff_t lo, ptrdiff_t hi) {
        return RS.max(buf, lo, hi); }
    static inline double rs_expsum(double *restrict buf, double mx, ptrdiff_t lo, ptrdiff_t hi) {
        return RS.expsum(buf, mx, lo, hi); }
    static inline ptrdiff_t rs_search(const double *restrict buf, ptrdiff_t lo, ptrdiff_t hi,
                                      double target, double *acc) {
        return RS.search(buf, lo, hi, target, acc); }
    static inline void rs_fill_sampled(RS_ARGS_SAMPLED) {
        RS.fill_sampled(own, oth, spos, n, rk0, first, m, w, price, tt, cap, lo, hi, cur, area,
                        cl, cd, cc, mo, mx); }
    static inline void rs_expsum2(double *restrict own, double *restrict oth, double mo,
                                  double mx, ptrdiff_t n, double *so, double *sx) {
        RS.expsum2(own, oth, mo, mx, n, so, sx); }
    """
    int rs_openmp() noexcept nogil
    ctypedef struct rs_applicant:
        uint64_t key
        int64_t firm
    void rs_sort_applicants(rs_applicant *a, rs_applicant *tmp, Py_ssize_t n) noexcept nogil
    const char *rs_select_isa(int level) noexcept nogil
    uint64_t rs_firm_key(uint64_t seed, uint64_t year, uint64_t id) noexcept nogil
    uint64_t rs_round_key(uint64_t key, uint64_t r) noexcept nogil
    uint64_t rs_draw(uint64_t rk, uint64_t slot) noexcept nogil
    double rs_uniform(uint64_t h) noexcept nogil
    int64_t rs_index(uint64_t h, int64_t m) noexcept nogil
    double rs_exp_nonpos(double x) noexcept nogil
    double rs_fill(double *buf, const double *w, const double *price, const double *tt,
                   const double *cap, double area, double cl, double cd, double off,
                   Py_ssize_t lo, Py_ssize_t hi) noexcept nogil
    double rs_max(const double *buf, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil
    double rs_expsum(double *buf, double mx, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil
    Py_ssize_t rs_search(const double *buf, Py_ssize_t lo, Py_ssize_t hi, double target,
                         double *acc) noexcept nogil
    void rs_fill_sampled(double *own, double *oth, int64_t *spos, Py_ssize_t n, uint64_t rk0,
                         uint64_t first, int64_t m, const double *w, const double *price, const double *tt,
                         const double *cap, int64_t lo, int64_t hi, int64_t cur,
                         double area, double cl, double cd, double cc, double *mo,
                         double *mx) noexcept nogil
    void rs_expsum2(double *own, double *oth, double mo, double mx, Py_ssize_t n, double *so,
                    double *sx) noexcept nogil

cdef int32_t STAY = -1
cdef int32_t UNPLACED = -2
cdef uint64_t SLOT_BRANCH = 0
cdef uint64_t SLOT_ALTERNATIVE = 1
cdef uint64_t SLOT_PRIORITY = 2
cdef uint64_t SLOT_SAMPLE = 3
cdef double NEG_INF = -INFINITY

OPENMP = bool(rs_openmp())
"""Whether the module was compiled with OpenMP (otherwise ``threads`` is ignored)."""

ISA = rs_select_isa(-1).decode()
"""Instruction set of the vector loops in use: ``avx512``, ``avx2+fma`` or ``baseline``."""


def select_isa(level: int = -1) -> str:
    """Use the vector loops of ``level`` (0 baseline, 1 AVX2+FMA, 2 AVX-512, -1 best).

    Levels the CPU lacks are capped at the best available one. Returns the name in use.
    """
    global ISA
    ISA = rs_select_isa(level).decode()
    return ISA


def exp_nonpos(const double[::1] x, double[::1] out):
    """Write the kernel's ``exp`` of ``x`` (values <= 0) into ``out`` (for tests)."""
    cdef Py_ssize_t j
    for j in range(x.shape[0]):
        out[j] = rs_exp_nonpos(x[j])


cdef struct Problem:
    const double *W          # S x M sector utilities (canonical order)
    const double *price      # M
    const double *tt         # Z x M travel time from zone to each alternative
    double *cap              # M remaining capacity, or NULL
    const int32_t *region    # M region of each alternative
    const int64_t *rstart    # R first position of each region
    const int64_t *rend      # R one past the last position of each region
    const int64_t *pos_of    # m_real: position of an original index
    const int64_t *fid
    const int64_t *sector
    const int64_t *zone
    const int64_t *fregion
    const int64_t *falt      # current alternative (original index), -1 none
    const double *area
    const double *claw
    const double *stay
    const double *own_u
    const double *oth_u
    const double *bl
    const double *bd
    const double *bc
    const double *lam
    uint64_t seed
    uint64_t year
    Py_ssize_t M             # padded number of positions (row length of W, tt)
    Py_ssize_t m_real        # number of alternatives (sampling draws from these)
    Py_ssize_t n_sampled
    double log_corr


cdef inline Py_ssize_t _cur(const Problem *P, Py_ssize_t i) noexcept nogil:
    """Canonical position of firm i's current alternative, or -1."""
    cdef int64_t a = P.falt[i]
    return P.pos_of[a] if a >= 0 else -1


cdef inline int _branch(double b0, double b1, double b2, double u) noexcept nogil:
    """Upper-level draw: 0 stay, 1 own nest, 2 other nest, -1 nothing available."""
    cdef double m = b0
    if b1 > m:
        m = b1
    if b2 > m:
        m = b2
    if m == NEG_INF:
        return -1
    # exp(0) is 1 exactly: the largest branch needs no call
    cdef double e0 = 1.0 if b0 == m else exp(b0 - m)
    cdef double e1 = 1.0 if b1 == m else exp(b1 - m)
    cdef double e2 = 1.0 if b2 == m else exp(b2 - m)
    cdef double c0 = e0, c1 = c0 + e1
    cdef double t = u * (c1 + e2)
    if t < c0:
        return 0
    if t < c1:
        return 1
    if e2 > 0.0:
        return 2
    return 1 if e1 > 0.0 else 0


cdef inline Py_ssize_t _last_positive(const double *w, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t j = hi - 1
    while j >= lo:
        if w[j] > 0.0:
            return j
        j -= 1
    return -1


cdef inline int _upper(const Problem *P, Py_ssize_t i, uint64_t rk, double mo, double so,
                       double mx, double sx, int8_t *nest, double *ls_own,
                       double *ls_oth) noexcept nogil:
    """Round 0: store the logsums, draw the branch, store the nest; return the branch."""
    cdef Py_ssize_t s = P.sector[i]
    cdef double lso = NEG_INF, lsx = NEG_INF, bo = NEG_INF, bx = NEG_INF
    if mo > NEG_INF:
        lso = mo + log(so) + P.log_corr
        bo = P.own_u[i] + P.lam[s] * lso
    if mx > NEG_INF:
        lsx = mx + log(sx) + P.log_corr
        bx = P.oth_u[i] + P.lam[s] * lsx
    ls_own[i] = lso
    ls_oth[i] = lsx
    cdef int b = _branch(P.stay[i], bo, bx, rs_uniform(rs_draw(rk, SLOT_BRANCH)))
    nest[i] = <int8_t>(b if b > 0 else 0)
    return b


cdef inline int32_t _firm_full(const Problem *P, Py_ssize_t i, uint64_t rnd, double *buf,
                               int8_t *nest, double *ls_own, double *ls_oth) noexcept nogil:
    """Draw (round 0) or redraw (later rounds) firm i over the full choice set."""
    cdef Py_ssize_t s = P.sector[i], r = P.fregion[i]
    cdef Py_ssize_t M = P.M, lo = P.rstart[r], hi = P.rend[r], c = _cur(P, i), k
    cdef const double *w = P.W + s * M
    cdef const double *t = P.tt + P.zone[i] * M
    cdef double area = P.area[i], cl = P.bl[s] * area, cd = P.bd[s], cc = P.bc[s] * P.claw[i]
    cdef uint64_t rk = rs_round_key(rs_firm_key(P.seed, P.year, <uint64_t>P.fid[i]), rnd)
    cdef double mo = NEG_INF, mx = NEG_INF, so = 0.0, sx = 0.0, v, m2, acc
    cdef int b
    cdef bint do_own = True, do_oth = True
    if rnd > 0:
        b = nest[i]
        do_own = b == 1
        do_oth = b == 2
    if do_own:
        mo = rs_fill(buf, w, P.price, t, P.cap, area, cl, cd, 0.0, lo, hi)
        if lo <= c < hi:
            v = buf[c]
            buf[c] = NEG_INF
            if v == mo:
                mo = rs_max(buf, lo, hi)
        if mo > NEG_INF:
            so = rs_expsum(buf, mo, lo, hi)
    if do_oth:
        mx = rs_fill(buf, w, P.price, t, P.cap, area, cl, cd, cc, 0, lo)
        m2 = rs_fill(buf, w, P.price, t, P.cap, area, cl, cd, cc, hi, M)
        if m2 > mx:
            mx = m2
        if c >= 0 and (c < lo or c >= hi):
            v = buf[c]
            buf[c] = NEG_INF
            if v == mx:
                mx = rs_max(buf, 0, lo)
                m2 = rs_max(buf, hi, M)
                if m2 > mx:
                    mx = m2
        if mx > NEG_INF:
            sx = rs_expsum(buf, mx, 0, lo) + rs_expsum(buf, mx, hi, M)
    if rnd == 0:
        b = _upper(P, i, rk, mo, so, mx, sx, nest, ls_own, ls_oth)
        if b <= 0:
            return STAY if b == 0 else UNPLACED
    cdef double u = rs_uniform(rs_draw(rk, SLOT_ALTERNATIVE))
    acc = 0.0
    if b == 1:
        if mo == NEG_INF:
            return UNPLACED
        k = rs_search(buf, lo, hi, u * so, &acc)
        if k < 0:
            k = _last_positive(buf, lo, hi)
        return <int32_t>k
    if mx == NEG_INF:
        return UNPLACED
    k = rs_search(buf, 0, lo, u * sx, &acc)
    if k < 0:
        k = rs_search(buf, hi, M, u * sx, &acc)
    if k < 0:
        k = _last_positive(buf, hi, M)
    if k < 0:
        k = _last_positive(buf, 0, lo)
    return <int32_t>k


cdef inline int32_t _firm_sampled(const Problem *P, Py_ssize_t i, uint64_t rnd, double *own,
                                  double *oth, int64_t *spos, int8_t *nest, double *ls_own,
                                  double *ls_oth) noexcept nogil:
    """Same as ``_firm_full`` over the firm's sample of alternatives (fixed in round 0)."""
    cdef Py_ssize_t s = P.sector[i]
    cdef Py_ssize_t n = P.n_sampled, k
    cdef uint64_t key = rs_firm_key(P.seed, P.year, <uint64_t>P.fid[i])
    cdef uint64_t rk0 = rs_round_key(key, 0)
    cdef uint64_t rk = rs_round_key(key, rnd)
    cdef double area = P.area[i]
    cdef double mo, mx, so = 0.0, sx = 0.0, acc = 0.0
    cdef int b
    rs_fill_sampled(own, oth, spos, n, rk0, SLOT_SAMPLE, P.M, P.W + s * P.M, P.price,
                    P.tt + P.zone[i] * P.M, P.cap, P.rstart[P.fregion[i]], P.rend[P.fregion[i]],
                    _cur(P, i), area, P.bl[s] * area, P.bd[s], P.bc[s] * P.claw[i], &mo, &mx)
    rs_expsum2(own, oth, mo, mx, n, &so, &sx)
    if rnd == 0:
        b = _upper(P, i, rk, mo, so, mx, sx, nest, ls_own, ls_oth)
        if b <= 0:
            return STAY if b == 0 else UNPLACED
    else:
        b = nest[i]
    cdef double u = rs_uniform(rs_draw(rk, SLOT_ALTERNATIVE))
    cdef double *wts = own if b == 1 else oth
    cdef double tot = so if b == 1 else sx
    if (mo if b == 1 else mx) == NEG_INF:
        return UNPLACED
    k = rs_search(wts, 0, n, u * tot, &acc)
    if k < 0:
        k = _last_positive(wts, 0, n)
    return <int32_t>spos[k]


def choose(
    const double[:, ::1] W,
    const double[::1] price,
    const double[:, ::1] tt,
    const int32_t[::1] region,
    const int64_t[::1] rstart,
    const int64_t[::1] rend,
    const int64_t[::1] pos_of,
    const int64_t[::1] firm_id,
    const int64_t[::1] sector,
    const int64_t[::1] zone,
    const int64_t[::1] fregion,
    const int64_t[::1] firm_alt,
    const int64_t[::1] perm,
    const double[::1] area,
    const double[::1] claw,
    const double[::1] stay,
    const double[::1] own_u,
    const double[::1] oth_u,
    const double[::1] b_land,
    const double[::1] b_dist,
    const double[::1] b_claw,
    const double[::1] lam,
    double[::1] cap,
    uint64_t seed,
    uint64_t year,
    Py_ssize_t n_sampled,
    int max_rounds,
    int threads,
    double[:, ::1] scratch,
    int64_t[:, ::1] scratch_pos,
    int32_t[::1] pos_out,
    int8_t[::1] nest,
    double[::1] ls_own,
    double[::1] ls_oth,
    int64_t[::1] active,
    int64_t[::1] counts,
    rs_applicant[::1] apps,
    rs_applicant[::1] apps_tmp,
    int8_t[::1] rejected,
):
    """Run the nested-logit draw and the capacity lottery; return the rounds used.

    All arrays are in canonical (region-sorted) alternative order and already validated
    by ``relocsim.choice``; ``cap`` has length 0 when there is no capacity and is
    updated in place otherwise. ``scratch`` is (threads, max(M, 2 * n_sampled)),
    ``scratch_pos`` (threads, max(n_sampled, 1)); ``active`` (N, or 0 without capacity), ``counts`` (M + 1),
    ``apps`` (N), ``apps_tmp`` (N) and ``rejected`` (N) are
    work arrays. Outputs: ``pos_out`` (original
    alternative index, STAY or UNPLACED), ``nest``, ``ls_own``, ``ls_oth``.
    """
    cdef Problem P
    cdef Py_ssize_t N = firm_id.shape[0], M = price.shape[0]
    cdef Py_ssize_t j, i, a, q, n_active = N, n_app, n_next, start, end
    cdef int rnd = 0, rounds = 0, tid
    cdef double *sbuf
    cdef int64_t *spos
    cdef double cum, c2
    cdef int32_t p
    cdef bint has_cap = cap.shape[0] > 0
    if N == 0:
        return 1
    P.W = &W[0, 0]
    P.price = &price[0]
    P.tt = &tt[0, 0]
    P.cap = &cap[0] if has_cap else NULL
    P.region = &region[0]
    P.rstart = &rstart[0]
    P.rend = &rend[0]
    P.pos_of = &pos_of[0]
    P.fid = &firm_id[0]
    P.sector = &sector[0]
    P.zone = &zone[0]
    P.fregion = &fregion[0]
    P.falt = &firm_alt[0]
    P.area = &area[0]
    P.claw = &claw[0]
    P.stay = &stay[0]
    P.own_u = &own_u[0]
    P.oth_u = &oth_u[0]
    P.bl = &b_land[0]
    P.bd = &b_dist[0]
    P.bc = &b_claw[0]
    P.lam = &lam[0]
    P.seed = seed
    P.year = year
    P.M = M
    P.m_real = pos_of.shape[0]
    P.n_sampled = n_sampled
    P.log_corr = log(<double>P.m_real / <double>n_sampled) if n_sampled > 0 else 0.0

    if has_cap:
        for j in range(N):
            active[j] = j
    with nogil:
        while rnd < max_rounds:
            rounds = rnd + 1
            with parallel(num_threads=threads):
                tid = threadid()
                sbuf = &scratch[tid, 0]
                spos = &scratch_pos[tid, 0]
                for j in prange(n_active, schedule="static"):
                    i = active[j] if has_cap else j
                    if n_sampled > 0:
                        pos_out[i] = _firm_sampled(&P, i, rnd, sbuf, sbuf + n_sampled, spos,
                                                   &nest[0], &ls_own[0], &ls_oth[0])
                    else:
                        pos_out[i] = _firm_full(&P, i, rnd, sbuf, &nest[0], &ls_own[0],
                                                &ls_oth[0])
            if not has_cap:
                break
            # capacity lottery: group applicants by alternative (counting sort) ...
            for a in range(M + 1):
                counts[a] = 0
            for j in range(n_active):
                p = pos_out[active[j]]
                if p >= 0:
                    counts[p + 1] += 1
            for a in range(M):
                counts[a + 1] += counts[a]
            n_app = counts[M]
            for j in range(n_active):
                i = active[j]
                p = pos_out[i]
                if p >= 0:
                    apps[counts[p]].firm = i
                    apps[counts[p]].key = rs_draw(
                        rs_round_key(rs_firm_key(seed, year, <uint64_t>firm_id[i]), rnd),
                        SLOT_PRIORITY)
                    counts[p] += 1
            # ... counts[a] is now the end of a's group; sort each by priority, accept the
            # longest prefix that fits, reject the rest
            for a in prange(M, schedule="dynamic", num_threads=threads):
                start = counts[a - 1] if a > 0 else 0
                end = counts[a]
                if end > start:
                    rs_sort_applicants(&apps[start], &apps_tmp[start], end - start)
                    cum = 0.0
                    q = start
                    while q < end:
                        c2 = cum + area[apps[q].firm]
                        if not c2 <= cap[a]:
                            break
                        cum = c2
                        q = q + 1
                    cap[a] = cap[a] - cum
                    while q < end:
                        rejected[apps[q].firm] = 1
                        q = q + 1
            n_next = 0
            for j in range(n_active):
                i = active[j]
                if rejected[i]:
                    rejected[i] = 0
                    active[n_next] = i
                    n_next = n_next + 1
            n_active = n_next
            if n_active == 0:
                break
            rnd = rnd + 1
        if has_cap and n_active > 0:
            for j in range(n_active):
                pos_out[active[j]] = UNPLACED
        for j in prange(N, schedule="static", num_threads=threads):
            if pos_out[j] >= 0:
                pos_out[j] = <int32_t>perm[pos_out[j]]
    return rounds
