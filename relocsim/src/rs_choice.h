/* Vector loops of the location-choice kernel (relocsim/_core.pyx), one copy per
 * instruction set, picked at import by rs_select_isa(). Every symbol is static.
 *
 * The loops work on a per-thread buffer: with the full choice set, buf[j] is alternative
 * j's utility, then exp(u - max); with sampling, buf[k] is sample entry k's (own-nest
 * entries first, then other-nest entries), spos[k] its canonical position.
 */
#ifndef RELOCSIM_RS_CHOICE_H
#define RELOCSIM_RS_CHOICE_H

#include "rs_simd.h"

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
#undef RS_FILL_LOOP

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

/* ---- stratified sampling of alternatives (twin: relocsim/_reference.py) ---- */

/* Split n draws between the own-region nest (size_own alternatives) and the other nest:
   each non-empty nest is allotted half (the own nest the smaller half), a nest no larger
   than its allotment is taken whole and its unused draws go to the other nest. A nest is
   taken whole exactly when its count equals its size. */
static inline void rs_allocate_sample(int64_t n, int64_t size_own, int64_t size_other,
                                      int64_t *n_own, int64_t *n_other) {
    int64_t want_own = size_other == 0 ? n : (size_own == 0 ? 0 : n / 2);
    int64_t b = n - want_own < size_other ? n - want_own : size_other;
    int64_t a = n - b < size_own ? n - b : size_own;
    b = n - a < size_other ? n - a : size_other;
    *n_own = a;
    *n_other = b;
}

/* Canonical positions of sample entries [k0, k0 + cnt), one nest's: member idx of a nest
   of `size` members is position base + idx, plus gap_size once idx >= gap (the other
   nest skips the own region: base 0, gap = its start, gap_size = its size). A nest taken
   whole lists its members in order; otherwise idx is drawn uniformly at stream slot
   first + k (with replacement). */
RS_INLINE void rs_sample_positions_impl(int64_t *restrict spos, ptrdiff_t k0, ptrdiff_t cnt,
                                        int whole, uint64_t rk0, uint64_t first, int64_t base,
                                        int64_t size, int64_t gap, int64_t gap_size) {
    if (whole) {
        #pragma omp simd
        for (ptrdiff_t k = 0; k < cnt; k++)
            spos[k0 + k] = base + k + (k >= gap ? gap_size : 0);
    } else {
        #pragma omp simd
        for (ptrdiff_t k = 0; k < cnt; k++) {
            int64_t idx = rs_index(rs_draw(rk0, first + (uint64_t)(k0 + k)), size);
            spos[k0 + k] = base + idx + (idx >= gap ? gap_size : 0);
        }
    }
}

/* Utilities of sample entries [k0, k1) into buf (-inf for the current alternative and,
   with capacity, where the firm does not fit); returns their maximum. Branch-free, one
   loop per capacity case: GCC vectorises it with gathers. */
RS_INLINE double rs_fill_sampled_impl(double *restrict buf, const int64_t *restrict spos,
                                      ptrdiff_t k0, ptrdiff_t k1, const double *restrict w,
                                      const double *restrict price, const double *restrict tt,
                                      const double *restrict cap, int64_t cur, double area,
                                      double cl, double cd, double off) {
    double m = -INFINITY;
#define RS_SAMPLED_LOOP(BAD) \
    _Pragma("omp simd reduction(max:m)") \
    for (ptrdiff_t k = k0; k < k1; k++) { \
        int64_t p = spos[k]; \
        double u = w[p] - cl * price[p] - cd * tt[p] - off; \
        u = (BAD) ? -INFINITY : u; \
        buf[k] = u; \
        m = u > m ? u : m; \
    }
    if (cap) {
        RS_SAMPLED_LOOP((p == cur) | (cap[p] < area))
    } else {
        RS_SAMPLED_LOOP(p == cur)
    }
#undef RS_SAMPLED_LOOP
    return m;
}

/* ---- capacity lottery: sort an alternative's applicants by priority key ---- */
typedef struct { uint64_t key; int64_t firm; } rs_applicant;

/* Stable LSD radix sort by key (8-bit digits, passes where all digits agree are
   skipped); the applicants arrive in increasing firm order, so ties in key keep that
   order: the result is sorted by (key, firm). tmp has room for n. */
static inline void rs_sort_applicants(rs_applicant *a, rs_applicant *tmp, ptrdiff_t n) {
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

/* ---- one copy of each loop per instruction set, picked at import ---- */
#define RS_ARGS_FILL double *restrict buf, const double *restrict w, \
    const double *restrict price, const double *restrict tt, const double *restrict cap, \
    double area, double cl, double cd, double off, ptrdiff_t lo, ptrdiff_t hi
#define RS_ARGS_POSITIONS int64_t *restrict spos, ptrdiff_t k0, ptrdiff_t cnt, int whole, \
    uint64_t rk0, uint64_t first, int64_t base, int64_t size, int64_t gap, int64_t gap_size
#define RS_ARGS_SAMPLED double *restrict buf, const int64_t *restrict spos, ptrdiff_t k0, \
    ptrdiff_t k1, const double *restrict w, const double *restrict price, \
    const double *restrict tt, const double *restrict cap, int64_t cur, double area, \
    double cl, double cd, double off
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
    ATTR static void rs_sample_positions_##SUF(RS_ARGS_POSITIONS) { \
        rs_sample_positions_impl(spos, k0, cnt, whole, rk0, first, base, size, gap, \
                                 gap_size); } \
    ATTR static double rs_fill_sampled_##SUF(RS_ARGS_SAMPLED) { \
        return rs_fill_sampled_impl(buf, spos, k0, k1, w, price, tt, cap, cur, area, cl, \
                                    cd, off); } \
    ATTR static void rs_exp_array_##SUF(const double *restrict x, double *restrict out, \
                                        ptrdiff_t n) { \
        rs_exp_array_impl(x, out, n); }

typedef struct {
    double (*fill)(RS_ARGS_FILL);
    double (*max)(const double *restrict, ptrdiff_t, ptrdiff_t);
    double (*expsum)(double *restrict, double, ptrdiff_t, ptrdiff_t);
    ptrdiff_t (*search)(const double *restrict, ptrdiff_t, ptrdiff_t, double, double *);
    void (*sample_positions)(RS_ARGS_POSITIONS);
    double (*fill_sampled)(RS_ARGS_SAMPLED);
    void (*exp_array)(const double *restrict, double *restrict, ptrdiff_t);
    const char *name;
} rs_kernels;

#define RS_TABLE(SUF, LEVEL) {rs_fill_##SUF, rs_max_##SUF, rs_expsum_##SUF, rs_search_##SUF, \
                              rs_sample_positions_##SUF, rs_fill_sampled_##SUF, \
                              rs_exp_array_##SUF, RS_ISA_NAME_##LEVEL}
RS_VARIANT(base, )
#if RS_X86_DISPATCH
RS_VARIANT(avx2, RS_TARGET_AVX2)
RS_VARIANT(avx512, RS_TARGET_AVX512)
static const rs_kernels rs_table[3] = {RS_TABLE(base, 0), RS_TABLE(avx2, 1),
                                       RS_TABLE(avx512, 2)};
#else
static const rs_kernels rs_table[1] = {RS_TABLE(base, 0)};
#endif
static rs_kernels RS = RS_TABLE(base, 0);

/* level < 0: best available; otherwise capped at the best available */
static inline const char *rs_select_isa(int level) {
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
static inline void rs_sample_positions(RS_ARGS_POSITIONS) {
    RS.sample_positions(spos, k0, cnt, whole, rk0, first, base, size, gap, gap_size); }
static inline double rs_fill_sampled(RS_ARGS_SAMPLED) {
    return RS.fill_sampled(buf, spos, k0, k1, w, price, tt, cap, cur, area, cl, cd, off); }
static inline void rs_exp_array(const double *restrict x, double *restrict out, ptrdiff_t n) {
    RS.exp_array(x, out, n); }

#endif /* RELOCSIM_RS_CHOICE_H */
