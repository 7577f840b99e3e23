# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled log-likelihood and gradient of the simulator's nested logit (OpenMP).

The twin of :mod:`relocsim.estimation.likelihood` (its NumPy code is the specification; the
array layout is :class:`relocsim.estimation.design.ChoiceData`). The work is cut into blocks
of decisions that share their pool-level attributes (:class:`relocsim.estimation.design.
KernelBlocks`): the utility terms they have in common are computed once per block, then each
decision adds its own terms in one vectorised pass over its alternatives (the loops are in
``relocsim/src/rs_loglik.h``, one copy per instruction set, picked at import). No N x M
matrix: each thread holds a few rows of M. Each block's sums are formed serially and the
blocks are added in block order, so the result is the same bit for bit whatever the number
of threads. Validation and conversion happen in the Python caller; nothing here raises
except MemoryError.
"""

from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, exp
from libc.stdlib cimport calloc, free, malloc

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int rl_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int rl_max_threads(void) { return 1; }
    #endif
    """
    int rl_max_threads() nogil

cdef extern from "relocsim/src/rs_loglik.h" nogil:
    ctypedef struct rl_problem:
        const double *tables
        Py_ssize_t m
        int k
        int j
        const int *row
        const double *scale
        const unsigned char *allowed
        const int *allow_row
        const double *capacity
        const double *capacity_end
        const double *room_need
        const int *year_idx
        const double *need
        const int *alt_region
        const int *dec_region
        const int *sector
        const signed char *outcome
        const int *chosen
        const double *z_own
        const double *z_other
        const double *beta
        const double *gamma
        const double *lam
        const int *alts
        const double *weights
        Py_ssize_t n_sampled
        const int *order
        const unsigned char *shared
        double *per
    ctypedef struct rl_scratch:
        double *base
        double *own
        double *ones
        double *w_acc
        double *u
        double *coef
        double *g_base
        double *g_own
        double *g_cap
        double *g_end
        double *g_w
        double *g_tv
        double *g
        double *cv
        double *sv
        const double **tv
        int *var
    double rl_block(const rl_problem *P, Py_ssize_t lo, Py_ssize_t hi, rl_scratch *S,
                    double *gb) noexcept
    const char *rl_select_isa(int level) noexcept

cdef enum:
    WORK_PER_THREAD = 1000000

ISA = rl_select_isa(-1).decode()
"""Instruction set of the vector loops in use ("baseline", "avx2+fma" or "avx512")."""


def select_isa(level: int = -1) -> str:
    """Use the loops of instruction-set ``level`` (0 baseline, 1 AVX2, 2 AVX-512; -1: best),
    capped at what the CPU supports; returns the name of the one in use."""
    global ISA
    ISA = rl_select_isa(level).decode()
    return ISA


def max_threads():
    """Threads OpenMP would use by default (1 without OpenMP)."""
    return rl_max_threads()


cdef int _scratch_alloc(rl_scratch *S, Py_ssize_t width, Py_ssize_t k, Py_ssize_t q) noexcept nogil:
    """Allocate one thread's buffers; 0 on failure (_scratch_free is safe either way)."""
    cdef Py_ssize_t a
    cdef Py_ssize_t w = width + 1
    S.base = <double*> malloc(w * sizeof(double))
    S.own = <double*> malloc(w * sizeof(double))
    S.ones = <double*> malloc(w * sizeof(double))
    S.w_acc = <double*> malloc(w * sizeof(double))
    S.u = <double*> malloc(w * sizeof(double))
    S.coef = <double*> malloc(w * sizeof(double))
    S.g_base = <double*> malloc(w * sizeof(double))
    S.g_own = <double*> malloc(w * sizeof(double))
    S.g_cap = <double*> malloc(w * sizeof(double))
    S.g_end = <double*> malloc(w * sizeof(double))
    S.g_w = <double*> malloc(w * sizeof(double))
    S.g_tv = <double*> malloc((k + 1) * w * sizeof(double))
    S.g = <double*> malloc((q + 1) * sizeof(double))
    S.cv = <double*> malloc((k + 1) * sizeof(double))
    S.sv = <double*> malloc((k + 1) * sizeof(double))
    S.tv = <const double**> malloc((k + 1) * sizeof(double*))
    S.var = <int*> malloc((k + 1) * sizeof(int))
    if (S.base == NULL or S.own == NULL or S.ones == NULL or S.w_acc == NULL or S.u == NULL
            or S.coef == NULL or S.g_base == NULL or S.g_own == NULL or S.g_cap == NULL
            or S.g_end == NULL or S.g_w == NULL or S.g_tv == NULL or S.g == NULL
            or S.cv == NULL or S.sv == NULL or S.tv == NULL or S.var == NULL):
        return 0
    for a in range(w):
        S.ones[a] = 1.0
    return 1


cdef void _scratch_free(rl_scratch *S) noexcept nogil:
    free(S.base)
    free(S.own)
    free(S.ones)
    free(S.w_acc)
    free(S.u)
    free(S.coef)
    free(S.g_base)
    free(S.g_own)
    free(S.g_cap)
    free(S.g_end)
    free(S.g_w)
    free(S.g_tv)
    free(S.g)
    free(S.cv)
    free(S.sv)
    free(S.tv)
    free(S.var)


def loglik(
    const double[:, ::1] tables,
    const int[:, ::1] row,
    const double[:, ::1] scale,
    const unsigned char[:, ::1] allowed,
    const int[::1] allow_row,
    const double[:, ::1] capacity,
    const double[:, ::1] capacity_end,
    const double[::1] room_need,
    const int[::1] year_idx,
    const double[::1] need,
    const int[::1] alt_region,
    const int[::1] dec_region,
    const int[::1] sector,
    const signed char[::1] outcome,
    const int[::1] chosen,
    const double[:, ::1] z_own,
    const double[:, ::1] z_other,
    const double[:, ::1] beta,
    const double[:, ::1] gamma,
    const double[::1] lam,
    const int[:, ::1] alts,
    const double[:, ::1] weights,
    const int[::1] order,
    const long long[::1] block_start,
    const unsigned char[::1] shared,
    double[:, ::1] grad,
    double[:, ::1] per,
    int threads,
):
    """Sum of the log-likelihood over decisions; gradient per sector into ``grad`` (S, Q).

    ``order`` lists the decisions block by block, block ``b`` being
    ``order[block_start[b]:block_start[b + 1]]`` (decisions sharing sector, year, origin
    region, availability row, every attribute's table row and the scale of each ``shared``
    attribute). ``per`` (N, Q) receives each decision's gradient when it has N rows (else it
    is skipped). ``alts``/``weights`` (N, L) give sampled alternatives; 0 columns: all M pools.
    """
    cdef Py_ssize_t n = sector.shape[0]
    cdef Py_ssize_t m = tables.shape[1]
    cdef Py_ssize_t k = beta.shape[1]
    cdef Py_ssize_t j = gamma.shape[1]
    cdef Py_ssize_t n_s = beta.shape[0]
    cdef Py_ssize_t q = k + j + 1
    cdef Py_ssize_t n_sampled = alts.shape[1] if alts.shape[0] > 0 else 0
    cdef Py_ssize_t width = n_sampled if n_sampled > m else m
    cdef Py_ssize_t n_blocks = block_start.shape[0] - 1
    cdef bint keep = per.shape[0] == n and n > 0
    cdef Py_ssize_t work = n * (n_sampled if n_sampled > 0 else m)
    # a thread per WORK_PER_THREAD decision-alternative pairs at most: on a busy machine, waking
    # a second thread costs more than a small evaluation
    cdef int nt = threads if threads > 0 else min(rl_max_threads(), 1 + work // WORK_PER_THREAD)
    cdef double* block_ll = <double*> malloc((n_blocks + 1) * sizeof(double))
    cdef double* block_g = <double*> malloc((n_blocks * q + 1) * sizeof(double))
    cdef rl_problem P
    cdef rl_scratch* scr = <rl_scratch*> calloc(nt, sizeof(rl_scratch))
    cdef Py_ssize_t blk, kk, t, c
    cdef int failed = 0
    cdef double total = 0.0
    if block_ll == NULL or block_g == NULL or scr == NULL:
        free(block_ll)
        free(block_g)
        free(scr)
        raise MemoryError()
    if n > 0:
        P.tables = &tables[0, 0]
        P.m = m
        P.k = <int>k
        P.j = <int>j
        P.row = &row[0, 0]
        P.scale = &scale[0, 0]
        P.allowed = &allowed[0, 0]
        P.allow_row = &allow_row[0]
        P.capacity = &capacity[0, 0]
        P.capacity_end = &capacity_end[0, 0]
        P.room_need = &room_need[0]
        P.year_idx = &year_idx[0]
        P.need = &need[0]
        P.alt_region = &alt_region[0]
        P.dec_region = &dec_region[0]
        P.sector = &sector[0]
        P.outcome = &outcome[0]
        P.chosen = &chosen[0]
        P.z_own = &z_own[0, 0]
        P.z_other = &z_other[0, 0]
        P.beta = &beta[0, 0]
        P.gamma = &gamma[0, 0]
        P.lam = &lam[0]
        P.alts = &alts[0, 0] if n_sampled > 0 else NULL
        P.weights = &weights[0, 0] if n_sampled > 0 else NULL
        P.n_sampled = n_sampled
        P.order = &order[0]
        P.shared = &shared[0]
        P.per = &per[0, 0] if keep else NULL
        for t in range(nt):
            if _scratch_alloc(&scr[t], width, k, q) == 0:
                failed = 1
        if not failed:
            for blk in prange(n_blocks, nogil=True, schedule="dynamic", num_threads=nt):
                block_ll[blk] = rl_block(
                    &P, block_start[blk], block_start[blk + 1], &scr[threadid()],
                    block_g + blk * q,
                )
    for t in range(nt):
        _scratch_free(&scr[t])
    free(scr)
    if failed:
        free(block_ll)
        free(block_g)
        raise MemoryError()
    for kk in range(n_s * q):
        grad[kk // q, kk % q] = 0.0
    for blk in range(n_blocks):
        total += block_ll[blk]
        kk = sector[order[block_start[blk]]]
        for c in range(q):
            grad[kk, c] += block_g[blk * q + c]
    free(block_ll)
    free(block_g)
    return total


cdef void _importance_row(
    const double[:, ::1] tables, const int[:, ::1] row, const double[:, ::1] scale,
    const unsigned char[:, ::1] allowed, const int[::1] allow_row,
    const double[:, ::1] capacity, const int[::1] year_idx, const double[::1] need,
    const int[::1] alt_region, const int[::1] dec_region, const int[::1] sector,
    const int[::1] chosen, const double[:, ::1] beta, const double[:, ::1] keys,
    Py_ssize_t lo, Py_ssize_t i, Py_ssize_t half, int[:, ::1] alts, double[:, ::1] weights,
    double *u, double *csum, double *count,
) noexcept nogil:
    """Decision ``lo + i``: its pools' utility, then each nest's draws (sampling.py _draw_pps,
    operation for operation so that the two agree)."""
    cdef Py_ssize_t r = lo + i
    cdef Py_ssize_t m = tables.shape[1]
    cdef Py_ssize_t n_sampled = keys.shape[1]
    cdef Py_ssize_t s = sector[r]
    cdef Py_ssize_t kk, a, d, nest, first, n_draw, pos, step, mid
    cdef int own
    cdef const double *t
    cdef const unsigned char *allow = &allowed[allow_row[r], 0]
    cdef const double *cap = &capacity[year_idx[r], 0]
    cdef double coef, top, total, target, e
    for a in range(m):
        u[a] = 0.0
    for kk in range(beta.shape[1]):
        coef = beta[s, kk] * scale[r, kk]
        t = &tables[row[r, kk], 0]
        for a in range(m):
            u[a] = u[a] + coef * t[a]
    for nest in range(2):
        own = nest == 0
        first = 0 if own else half
        n_draw = half if own else n_sampled - half
        top = -INFINITY
        for a in range(m):
            if (allow[a] > 0 and cap[a] >= need[r] and a != chosen[r]
                    and (alt_region[a] == dec_region[r]) == own):
                csum[a] = 1.0
                if u[a] > top:
                    top = u[a]
            else:
                csum[a] = 0.0
        total = 0.0
        for a in range(m):  # running sum of exp(u - top) over the nest's available pools
            e = exp(u[a] - top) if csum[a] > 0.0 else 0.0
            total = total + e
            csum[a] = total
            count[a] = 0.0
        if not total > 0.0:
            continue
        for d in range(n_draw):  # the first pool whose cdf exceeds the key (np.searchsorted)
            target = keys[i, first + d] * (1 - 1e-12)
            pos, step = 0, m
            while step > 0:
                mid = pos + step // 2
                if csum[mid] / total <= target:
                    pos = mid + 1
                    step = step - step // 2 - 1
                else:
                    step = step // 2
            count[pos if pos < m else m - 1] += 1.0
        pos = 1 + first
        for a in range(m):  # drawn pools in pool order, weight (times drawn) / (n_draw p)
            if count[a] > 0.0:
                e = exp(u[a] - top) / total
                if e > 0.0:
                    alts[r, pos] = <int>a
                    weights[r, pos] = count[a] / (n_draw * e)
                    pos += 1


def importance_draws(
    const double[:, ::1] tables,
    const int[:, ::1] row,
    const double[:, ::1] scale,
    const unsigned char[:, ::1] allowed,
    const int[::1] allow_row,
    const double[:, ::1] capacity,
    const int[::1] year_idx,
    const double[::1] need,
    const int[::1] alt_region,
    const int[::1] dec_region,
    const int[::1] sector,
    const int[::1] chosen,
    const double[:, ::1] beta,
    const double[:, ::1] keys,
    Py_ssize_t lo,
    Py_ssize_t half,
    int[:, ::1] alts,
    double[:, ::1] weights,
    int threads,
):
    """Importance draws of decisions ``lo .. lo + len(keys) - 1`` into columns 1.. of their
    rows of ``alts``/``weights`` (prefilled with -1 / 0): ``half`` draws from the own-region
    nest with keys ``keys[:, :half]``, the rest from the other, pool ``j`` with probability
    proportional to ``exp`` of its utility at ``beta`` among the nest's available pools
    (:func:`relocsim.estimation.sampling._draw_pps` is the specification). Each decision is
    computed alone from its own keys, so the draws do not depend on the number of threads;
    the loops are plain C (no per-instruction-set variants)."""
    cdef Py_ssize_t c = keys.shape[0]
    cdef Py_ssize_t m = tables.shape[1]
    cdef Py_ssize_t i
    cdef int nt = threads if threads > 0 else rl_max_threads()
    cdef double *buf = <double*> malloc(nt * 3 * (m + 1) * sizeof(double))
    cdef double *mine
    if buf == NULL:
        raise MemoryError()
    for i in prange(c, nogil=True, schedule="static", num_threads=nt):
        mine = buf + threadid() * 3 * (m + 1)
        _importance_row(
            tables, row, scale, allowed, allow_row, capacity, year_idx, need, alt_region,
            dec_region, sector, chosen, beta, keys, lo, i, half, alts, weights,
            mine, mine + (m + 1), mine + 2 * (m + 1),
        )
    free(buf)
