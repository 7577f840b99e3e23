/* Vector loops of the estimator's likelihood kernel (relocsim/_likelihood.pyx), one copy per
 * instruction set, picked at import by rl_select_isa(). Every symbol is static.
 *
 * The unit of work is a block: up to a few hundred decisions that share their sector,
 * year, origin region, availability row and every attribute's table row (and the scale of
 * every "shared" attribute), so that the part of the utility they have in common,
 *     base[a] = sum over shared k of beta[k] * scale[k] * table[row[k], a],
 * is computed once per block; each decision adds only its own attributes ("var": land
 * cost x need, loss on leaving, ...). The gradient over the shared attributes is summed
 * per block the same way: W[a] accumulates dlogL/du_a over the block's decisions, and
 * the block's gradient is sum_a W[a] table[row[k], a] at the end. Which attributes are
 * shared and how decisions form blocks is decided in Python
 * (relocsim.estimation.design.KernelBlocks). With per-decision scores requested, every
 * attribute is treated as var (each decision's gradient is then complete on its own).
 *
 * A decision's pass over its alternatives works on contiguous arrays: the pool tables
 * themselves with the full choice set, a gathered copy with sampled alternatives. The
 * sums inside a block run in a fixed order; the caller adds the blocks in block order, so
 * the result does not depend on the number of threads.
 */
#ifndef RELOCSIM_RS_LOGLIK_H
#define RELOCSIM_RS_LOGLIK_H

#include "rs_simd.h"

/* The problem, as arrays in the layout of relocsim.estimation.design.ChoiceData. */
typedef struct {
    const double *tables;           /* (R, M) attribute tables */
    ptrdiff_t m;                    /* pools */
    int k;                          /* lower-level attributes */
    int j;                          /* upper-level attributes */
    const int *row;                 /* (N, K) table row of each decision's attribute */
    const double *scale;            /* (N, K) its multiplier */
    const unsigned char *allowed;   /* (R_a, M) */
    const int *allow_row;           /* (N) */
    const double *capacity;         /* (T, M) */
    const double *capacity_end;     /* (T, M) */
    const double *room_need;        /* (N) */
    const int *year_idx;            /* (N) */
    const double *need;             /* (N) */
    const int *alt_region;          /* (M) */
    const int *dec_region;          /* (N) */
    const int *sector;              /* (N) */
    const signed char *outcome;     /* (N) 0 stay, 1 own nest, 2 other nest */
    const int *chosen;              /* (N) chosen pool or -1 */
    const double *z_own;            /* (N, J) */
    const double *z_other;          /* (N, J) */
    const double *beta;             /* (S, K) */
    const double *gamma;            /* (S, J) */
    const double *lam;              /* (S) */
    const int *alts;                /* (N, L) sampled pools (-1 pads), or NULL: all pools */
    const double *weights;          /* (N, L) expansion factors */
    ptrdiff_t n_sampled;            /* L (0: all pools) */
    const int *order;               /* decisions in block order */
    const unsigned char *shared;    /* (K) 1: attribute folded into the block's base */
    double *per;                    /* (N, K + J + 1) per-decision gradient, or NULL */
} rl_problem;

/* Per-thread scratch, each array of at least max(M, L) doubles (tv: K of them). */
typedef struct {
    double *base, *own, *ones, *w_acc;          /* per block, length M */
    double *u, *coef;                            /* per decision */
    double *g_base, *g_own, *g_cap, *g_end, *g_w; /* gathered sampled arrays */
    double *g_tv;                                 /* K x L gathered var attributes */
    double *g;                                    /* K + J + 1 */
    double *cv;                                   /* K: beta * scale of the var attributes */
    double *sv;                                   /* K: their scales */
    const double **tv;                            /* K pointers */
    int *var;                                     /* K: indices of the var attributes */
} rl_scratch;

/* dlogL/du of every alternative of one decision into coef (length L) and the upper-level
   part of its log-likelihood and gradient; the lower-level gradient over its var
   attributes into g[var[v]]. */
RS_INLINE double rl_decision_impl(
    ptrdiff_t n, const double *restrict base, const double *const *tv, const double *cv,
    const double *sv, const int *var, int nv, const double *restrict cap, double need,
    const double *restrict own, const double *restrict cap_end, double thr,
    const double *restrict w, int outcome, int room_nest, double lam,
    const double *z_own, const double *z_other, int k, int j, const double *gm,
    double *restrict u, double *restrict coef, double *restrict g, double *mx_out,
    double *room_out) {
    double mx0 = -INFINITY, mx1 = -INFINITY;
    #pragma omp simd
    for (ptrdiff_t a = 0; a < n; a++) u[a] = base[a];
    for (int v = 0; v < nv; v++) {
        const double *restrict t = tv[v];
        double c = cv[v];
        #pragma omp simd
        for (ptrdiff_t a = 0; a < n; a++) u[a] += c * t[a];
    }
    #pragma omp simd reduction(max:mx0, mx1)
    for (ptrdiff_t a = 0; a < n; a++) {
        double x = cap[a] >= need ? u[a] : -INFINITY;
        u[a] = x;
        double x0 = own[a] > 0.0 ? x : -INFINITY;
        double x1 = own[a] > 0.0 ? -INFINITY : x;
        mx0 = x0 > mx0 ? x0 : mx0;
        mx1 = x1 > mx1 ? x1 : mx1;
    }
    double s0 = mx0 == -INFINITY ? 0.0 : mx0, s1 = mx1 == -INFINITY ? 0.0 : mx1;
    /* room_nest: nest whose pools with land left >= thr make the pool-level term (-1: none) */
    double rn = room_nest == 0 ? 1.0 : (room_nest == 1 ? 0.0 : -1.0);
    double tot0 = 0.0, tot1 = 0.0, room = 0.0;
    #pragma omp simd reduction(+:tot0, tot1, room)
    for (ptrdiff_t a = 0; a < n; a++) {
        int mine = own[a] > 0.0;
        double e = w[a] * rs_exp_nonpos(u[a] - (mine ? s0 : s1));
        coef[a] = e;
        tot0 += mine ? e : 0.0;
        tot1 += mine ? 0.0 : e;
        room += (own[a] == rn && cap_end[a] >= thr) ? e : 0.0;
    }
    double tot[2] = {tot0, tot1}, mx[2] = {mx0, mx1}, ls[2], vv[2], p[2];
    for (int q = 0; q < 2; q++) {
        if (tot[q] > 0.0) {
            const double *z = q == 0 ? z_own : z_other;
            double zs = 0.0;
            for (int kk = 0; kk < j; kk++) zs += gm[kk] * z[kk];
            ls[q] = mx[q] + log(tot[q]);
            vv[q] = zs + lam * ls[q];
        } else {
            ls[q] = 0.0;
            vv[q] = -INFINITY;
        }
    }
    /* log D = log(1 + exp(v0) + exp(v1)), stably */
    double top = vv[0] > vv[1] ? vv[0] : vv[1];
    if (top < 0.0) top = 0.0;
    double ev0 = vv[0] == -INFINITY ? 0.0 : exp(vv[0] - top);
    double ev1 = vv[1] == -INFINITY ? 0.0 : exp(vv[1] - top);
    double d = exp(-top) + ev0 + ev1;
    double log_d = top + log(d);
    double ll = -log_d;
    p[0] = ev0 / d;
    p[1] = ev1 / d;
    int o = outcome - 1;
    if (o >= 0 && vv[o] != -INFINITY) ll += vv[o];
    double a_nest[2];
    for (int q = 0; q < 2; q++) {
        double dq = (q == o ? 1.0 : 0.0) - p[q];
        a_nest[q] = tot[q] > 0.0 ? lam * dq / tot[q] : 0.0;
        const double *z = q == 0 ? z_own : z_other;
        for (int kk = 0; kk < j; kk++) g[k + kk] += dq * z[kk];
        g[k + j] += dq * ls[q];
    }
    double r = room > 0.0 ? -1.0 / room : 0.0;
    double a0 = a_nest[0], a1 = a_nest[1];
    #pragma omp simd
    for (ptrdiff_t a = 0; a < n; a++) {
        double e = coef[a];
        double c = e * (own[a] > 0.0 ? a0 : a1);
        coef[a] = c + ((own[a] == rn && cap_end[a] >= thr) ? e * r : 0.0);
    }
    for (int v = 0; v < nv; v++) {
        const double *restrict t = tv[v];
        double s = 0.0;
        #pragma omp simd reduction(+:s)
        for (ptrdiff_t a = 0; a < n; a++) s += coef[a] * t[a];
        g[var[v]] += sv[v] * s;
    }
    *mx_out = o >= 0 ? mx[o] : 0.0;
    *room_out = room;
    return ll;
}

#define RL_AHEAD 2
RS_INLINE void rl_prefetch_span(const void *p, ptrdiff_t bytes) {
#if defined(__GNUC__)
    for (ptrdiff_t off = 0; off < bytes; off += 64) __builtin_prefetch((const char *)p + off);
    __builtin_prefetch((const char *)p + bytes - 1);
#else
    (void)p;
    (void)bytes;
#endif
}

/* the rows of decision i the block loop reads */
RS_INLINE void rl_prefetch(const rl_problem *P, ptrdiff_t i) {
    const ptrdiff_t k = P->k, j = P->j, L = P->n_sampled;
    rl_prefetch_span(P->scale + i * k, k * (ptrdiff_t)sizeof(double));
    rl_prefetch_span(P->z_own + i * j, j * (ptrdiff_t)sizeof(double));
    rl_prefetch_span(P->z_other + i * j, j * (ptrdiff_t)sizeof(double));
    rl_prefetch_span(P->need + i, 1);
    rl_prefetch_span(P->room_need + i, 1);
    rl_prefetch_span(P->chosen + i, 1);
    rl_prefetch_span(P->outcome + i, 1);
    if (L) {
        rl_prefetch_span(P->alts + i * L, L * (ptrdiff_t)sizeof(int));
        rl_prefetch_span(P->weights + i * L, L * (ptrdiff_t)sizeof(double));
    }
}

/* One block: decisions order[lo:hi]. Returns its log-likelihood; its gradient (K + J + 1,
   for the block's sector) into gb, zeroed first. */
RS_INLINE double rl_block_impl(const rl_problem *P, ptrdiff_t lo, ptrdiff_t hi,
                               rl_scratch *S, double *gb) {
    const ptrdiff_t m = P->m, L = P->n_sampled;
    const int k = P->k, j = P->j, q = k + j + 1;
    const int i0 = P->order[lo];
    const int s = P->sector[i0];
    const double *b = P->beta + (ptrdiff_t)s * k;
    const double *gm = P->gamma + (ptrdiff_t)s * j;
    const double lam = P->lam[s];
    const int *r0 = P->row + (ptrdiff_t)i0 * k;
    const double *sc0 = P->scale + (ptrdiff_t)i0 * k;
    const unsigned char *ok = P->allowed + (ptrdiff_t)P->allow_row[i0] * m;
    const double *cap = P->capacity + (ptrdiff_t)P->year_idx[i0] * m;
    const double *cap_end = P->capacity_end + (ptrdiff_t)P->year_idx[i0] * m;
    const int reg = P->dec_region[i0];
    const int keep = P->per != NULL;
    double *restrict base = S->base, *restrict own = S->own, *restrict wa = S->w_acc;
    int nv = 0, ns = 0;
    for (int kk = 0; kk < k; kk++) {
        if (P->shared[kk] && !keep) ns++;
        else S->var[nv++] = kk;
    }
    #pragma omp simd
    for (ptrdiff_t a = 0; a < m; a++) {
        base[a] = 0.0;
        wa[a] = 0.0;
        own[a] = P->alt_region[a] == reg ? 1.0 : 0.0;
    }
    for (int kk = 0; kk < k && ns; kk++) {
        if (!P->shared[kk]) continue;
        const double *restrict t = P->tables + (ptrdiff_t)r0[kk] * m;
        double c = b[kk] * sc0[kk];
        #pragma omp simd
        for (ptrdiff_t a = 0; a < m; a++) base[a] += c * t[a];
    }
    #pragma omp simd
    for (ptrdiff_t a = 0; a < m; a++) base[a] = ok[a] ? base[a] : -INFINITY;
    for (int kk = 0; kk < q; kk++) gb[kk] = 0.0;
    double total = 0.0;
    for (ptrdiff_t idx = lo; idx < hi; idx++) {
        const ptrdiff_t i = P->order[idx];
        /* decisions come in block order, not in memory order: fetch a later one's rows
           while this one is computed */
        if (idx + RL_AHEAD < hi) rl_prefetch(P, P->order[idx + RL_AHEAD]);
        const double *sci = P->scale + i * k;
        const int c = P->chosen[i];
        const double thr = P->room_need[i];
        const int outcome = P->outcome[i];
        const int room_nest = (c >= 0 && cap_end[c] >= thr) ? outcome - 1 : -1;
        double *g = keep ? P->per + i * q : S->g;
        for (int kk = 0; kk < q; kk++) g[kk] = 0.0;
        for (int v = 0; v < nv; v++) {
            S->sv[v] = sci[S->var[v]];
            S->cv[v] = b[S->var[v]] * S->sv[v];
        }
        double mx_o, room, ll;
        if (L == 0) {
            for (int v = 0; v < nv; v++) S->tv[v] = P->tables + (ptrdiff_t)r0[S->var[v]] * m;
            ll = rl_decision_impl(m, base, S->tv, S->cv, S->sv, S->var, nv, cap, P->need[i], own,
                                  cap_end, thr, S->ones, outcome, room_nest, lam,
                                  P->z_own + i * j, P->z_other + i * j, k, j, gm, S->u,
                                  S->coef, g, &mx_o, &room);
            #pragma omp simd
            for (ptrdiff_t a = 0; a < m; a++) wa[a] += S->coef[a];
        } else {
            const int *al = P->alts + i * L;
            const double *wl = P->weights + i * L;
            /* pads (-1, weight 0) read pool 0 and are made unavailable */
            double *restrict gb_ = S->g_base, *restrict go = S->g_own, *restrict gc = S->g_cap;
            double *restrict ge = S->g_end, *restrict gw = S->g_w;
            #pragma omp simd
            for (ptrdiff_t l = 0; l < L; l++) {
                int a = al[l] > 0 ? al[l] : 0;
                gb_[l] = al[l] >= 0 ? base[a] : -INFINITY;
                go[l] = own[a];
                gc[l] = cap[a];
                ge[l] = cap_end[a];
                gw[l] = al[l] >= 0 ? wl[l] : 0.0;
            }
            for (int v = 0; v < nv; v++) {
                const double *restrict t = P->tables + (ptrdiff_t)r0[S->var[v]] * m;
                double *restrict dst = S->g_tv + (ptrdiff_t)v * L;
                #pragma omp simd
                for (ptrdiff_t l = 0; l < L; l++) dst[l] = t[al[l] > 0 ? al[l] : 0];
                S->tv[v] = dst;
            }
            ll = rl_decision_impl(L, S->g_base, S->tv, S->cv, S->sv, S->var, nv, S->g_cap,
                                  P->need[i], S->g_own, S->g_end, thr, S->g_w, outcome,
                                  room_nest, lam, P->z_own + i * j, P->z_other + i * j, k, j,
                                  gm, S->u, S->coef, g, &mx_o, &room);
            for (ptrdiff_t l = 0; l < L; l++)
                if (al[l] >= 0) wa[al[l]] += S->coef[l];
        }
        if (room_nest >= 0 && room > 0.0) {
            double uc = 0.0;
            for (int kk = 0; kk < k; kk++) {
                double x = sci[kk] * P->tables[(ptrdiff_t)r0[kk] * m + c];
                uc += b[kk] * x;
                g[kk] += x;
            }
            ll += uc - (mx_o + log(room));
        }
        for (int kk = 0; kk < q; kk++) gb[kk] += g[kk];
        total += ll;
    }
    /* the shared attributes' gradient, summed over the block */
    for (int kk = 0; kk < k && ns; kk++) {
        if (!P->shared[kk]) continue;
        const double *restrict t = P->tables + (ptrdiff_t)r0[kk] * m;
        double acc = 0.0;
        #pragma omp simd reduction(+:acc)
        for (ptrdiff_t a = 0; a < m; a++) acc += wa[a] * t[a];
        gb[kk] += sc0[kk] * acc;
    }
    return total;
}

/* ---- one copy per instruction set, picked at import ---- */
#define RL_VARIANT(SUF, ATTR) \
    ATTR static double rl_block_##SUF(const rl_problem *P, ptrdiff_t lo, ptrdiff_t hi, \
                                      rl_scratch *S, double *gb) { \
        return rl_block_impl(P, lo, hi, S, gb); }

typedef double (*rl_block_fn)(const rl_problem *, ptrdiff_t, ptrdiff_t, rl_scratch *, double *);
RL_VARIANT(base, )
#if RS_X86_DISPATCH
RL_VARIANT(avx2, RS_TARGET_AVX2)
RL_VARIANT(avx512, RS_TARGET_AVX512)
static const rl_block_fn rl_table[3] = {rl_block_base, rl_block_avx2, rl_block_avx512};
static const char *rl_names[3] = {RS_ISA_NAME_0, RS_ISA_NAME_1, RS_ISA_NAME_2};
#else
static const rl_block_fn rl_table[1] = {rl_block_base};
static const char *rl_names[1] = {RS_ISA_NAME_0};
#endif
static rl_block_fn rl_block_selected = rl_block_base;

/* level < 0: best available; otherwise capped at the best available */
static inline const char *rl_select_isa(int level) {
    int best = rs_best_isa();
    int use = (level < 0 || level > best) ? best : level;
    rl_block_selected = rl_table[use];
    return rl_names[use];
}
static inline double rl_block(const rl_problem *P, ptrdiff_t lo, ptrdiff_t hi, rl_scratch *S,
                              double *gb) {
    return rl_block_selected(P, lo, hi, S, gb);
}

#endif /* RELOCSIM_RS_LOGLIK_H */
