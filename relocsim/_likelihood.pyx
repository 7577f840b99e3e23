# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Compiled log-likelihood and gradient of the simulator's nested logit (OpenMP).

The twin of :mod:`relocsim.estimation.likelihood` (its NumPy code is the specification; the
array layout is :class:`relocsim.estimation.design.ChoiceData`). One pass per decision over its
alternatives, with a per-thread buffer of one row of utilities: no N x M matrix. Decisions are
cut into blocks of ``BLOCK``, whose sums are formed serially inside the block and then added in
block order, so the result is the same bit for bit whatever the number of threads.
Validation and conversion happen in the Python caller; nothing here raises.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport exp, log, INFINITY
from libc.stdlib cimport free, malloc
from libc.string cimport memset

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

cdef enum:
    BLOCK = 256


cdef inline double _logaddexp(double a, double b) noexcept nogil:
    if a == -INFINITY:
        return b
    if b == -INFINITY:
        return a
    if a > b:
        return a + log(1.0 + exp(b - a))
    return b + log(1.0 + exp(a - b))


cdef double _one(
    Py_ssize_t i,
    const double* tables, Py_ssize_t m,
    const int* row, const double* scale, Py_ssize_t k,
    const unsigned char* allowed, const int* allow_row,
    const double* capacity, const double* capacity_end, const double* room_need,
    const int* year_idx,
    const double* need,
    const int* alt_region, const int* dec_region, const int* sector,
    const signed char* outcome, const int* chosen,
    const double* z_own, const double* z_other, Py_ssize_t j,
    const double* beta, const double* gamma, const double* lam,
    const int* alts, const double* weights, Py_ssize_t n_sampled,
    double* u, double* xb, double* ex, double* g,
) noexcept nogil:
    """Log-likelihood of decision i; its local gradient (K + J + 1) into g.

    Scratch: u (max(M, n_sampled)), xb (K x that: the attributes of pass 1), ex (4 K: two nest means, the chosen x, the mean over the
    chosen nest's pools with room left after the lottery).
    """
    cdef Py_ssize_t n_alt = n_sampled if n_sampled > 0 else m
    cdef Py_ssize_t q = k + j + 1
    cdef int s = sector[i]
    cdef const double* b = beta + s * k
    cdef const double* gm = gamma + s * j
    cdef double lam_s = lam[s]
    cdef const int* ri = row + i * k
    cdef const double* si = scale + i * k
    cdef const unsigned char* ok = allowed + <Py_ssize_t>allow_row[i] * m
    cdef const double* cap = capacity + <Py_ssize_t>year_idx[i] * m
    cdef const double* cap_end = capacity_end + <Py_ssize_t>year_idx[i] * m
    cdef double thr = room_need[i]
    cdef int c = chosen[i]
    cdef int chosen_nest = outcome[i] - 1 if c >= 0 and cap_end[c] >= thr else -1
    cdef double tot_room = 0.0
    cdef double* mean_room = ex + 3 * k
    cdef double need_i = need[i]
    cdef int reg = dec_region[i]
    cdef double mx[2]
    cdef double tot[2]
    cdef double ls[2]
    cdef double v[2]
    cdef double p[2]
    cdef double* mean0 = ex
    cdef double* mean1 = ex + k
    cdef double* xc = ex + 2 * k
    cdef Py_ssize_t l, kk, a, n
    cdef double val, e, w, log_d, ll, zsum
    cdef int nest
    cdef bint room
    mx[0] = -INFINITY
    mx[1] = -INFINITY
    tot[0] = 0.0
    tot[1] = 0.0
    for kk in range(2 * k):
        ex[kk] = 0.0
    for kk in range(k):
        mean_room[kk] = 0.0
    # pass 1: utilities (-inf if unavailable) and the max of each nest
    for l in range(n_alt):
        a = alts[i * n_sampled + l] if n_sampled > 0 else l
        if a < 0 or ok[a] == 0 or cap[a] < need_i:
            u[l] = -INFINITY
            continue
        val = 0.0
        for kk in range(k):
            e = si[kk] * tables[<Py_ssize_t>ri[kk] * m + a]
            xb[kk * n_alt + l] = e
            val = val + b[kk] * e
        u[l] = val
        nest = 0 if alt_region[a] == reg else 1
        if val > mx[nest]:
            mx[nest] = val
    # pass 2: the (expanded) nest sums and the exp-weighted sums of the attributes
    for l in range(n_alt):
        if u[l] == -INFINITY:
            continue
        a = alts[i * n_sampled + l] if n_sampled > 0 else l
        w = weights[i * n_sampled + l] if n_sampled > 0 else 1.0
        nest = 0 if alt_region[a] == reg else 1
        e = w * exp(u[l] - mx[nest])
        tot[nest] = tot[nest] + e
        room = nest == chosen_nest and cap_end[a] >= thr
        if room:
            tot_room = tot_room + e
        for kk in range(k):
            val = e * xb[kk * n_alt + l]
            ex[nest * k + kk] = ex[nest * k + kk] + val
            if room:
                mean_room[kk] = mean_room[kk] + val
    for n in range(2):
        if tot[n] > 0.0:
            ls[n] = mx[n] + log(tot[n])
            for kk in range(k):
                ex[n * k + kk] = ex[n * k + kk] / tot[n]
            zsum = 0.0
            for kk in range(j):
                zsum = zsum + gm[kk] * (z_own[i * j + kk] if n == 0 else z_other[i * j + kk])
            v[n] = zsum + lam_s * ls[n]
        else:
            ls[n] = 0.0
            v[n] = -INFINITY
    log_d = _logaddexp(0.0, _logaddexp(v[0], v[1]))
    for n in range(2):
        p[n] = exp(v[n] - log_d) if v[n] != -INFINITY else 0.0
    ll = -log_d
    for kk in range(q):
        g[kk] = 0.0
    for n in range(2):
        for kk in range(k):
            g[kk] = g[kk] - p[n] * lam_s * ex[n * k + kk]
        for kk in range(j):
            g[k + kk] = g[k + kk] - p[n] * (z_own[i * j + kk] if n == 0 else z_other[i * j + kk])
        g[k + j] = g[k + j] - p[n] * ls[n]
    n = outcome[i] - 1
    if n >= 0:
        if v[n] != -INFINITY:
            ll = ll + v[n]
        for kk in range(k):
            g[kk] = g[kk] + lam_s * ex[n * k + kk]
        for kk in range(j):
            g[k + kk] = g[k + kk] + (z_own[i * j + kk] if n == 0 else z_other[i * j + kk])
        g[k + j] = g[k + j] + ls[n]
        if chosen_nest >= 0 and tot_room > 0.0:
            val = 0.0
            for kk in range(k):
                xc[kk] = si[kk] * tables[<Py_ssize_t>ri[kk] * m + c]
                val = val + b[kk] * xc[kk]
            ll = ll + val - (mx[n] + log(tot_room))
            for kk in range(k):
                g[kk] = g[kk] + xc[kk] - mean_room[kk] / tot_room
    return ll


def max_threads():
    """Threads OpenMP would use by default (1 without OpenMP)."""
    return rl_max_threads()


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
    double[:, ::1] grad,
    double[:, ::1] per,
    int threads,
):
    """Sum of the log-likelihood over decisions; gradient per sector into ``grad`` (S, Q).

    ``per`` (N, Q) receives each decision's gradient when it has N rows (else it is skipped).
    ``alts``/``weights`` (N, L) give sampled alternatives; 0 columns: all M pools.
    """
    cdef Py_ssize_t n = sector.shape[0]
    cdef Py_ssize_t m = tables.shape[1]
    cdef Py_ssize_t k = beta.shape[1]
    cdef Py_ssize_t j = gamma.shape[1]
    cdef Py_ssize_t n_s = beta.shape[0]
    cdef Py_ssize_t q = k + j + 1
    cdef Py_ssize_t n_sampled = alts.shape[1] if alts.shape[0] > 0 else 0
    cdef Py_ssize_t width = n_sampled if n_sampled > m else m
    cdef Py_ssize_t n_blocks = (n + BLOCK - 1) // BLOCK
    cdef bint keep = per.shape[0] == n and n > 0
    cdef int nt = threads if threads > 0 else rl_max_threads()
    cdef double* block_ll = <double*> malloc((n_blocks + 1) * sizeof(double))
    cdef double* block_g = <double*> malloc((n_blocks * n_s * q + 1) * sizeof(double))
    cdef double* u
    cdef double* xb
    cdef double* ex
    cdef double* g
    cdef Py_ssize_t blk, i, lo, hi, kk
    cdef double acc, total = 0.0
    cdef double* dst
    cdef const double* tp = &tables[0, 0] if tables.shape[0] > 0 else NULL
    cdef const int* ap = &alts[0, 0] if n_sampled > 0 else NULL
    cdef const double* wp = &weights[0, 0] if n_sampled > 0 else NULL
    if block_ll == NULL or block_g == NULL:
        free(block_ll)
        free(block_g)
        raise MemoryError()
    memset(block_g, 0, (n_blocks * n_s * q + 1) * sizeof(double))
    if n > 0:
        with nogil, parallel(num_threads=nt):
            u = <double*> malloc((width + 1) * sizeof(double))
            xb = <double*> malloc((k * width + 1) * sizeof(double))
            ex = <double*> malloc((4 * k + 1) * sizeof(double))
            g = <double*> malloc((q + 1) * sizeof(double))
            for blk in prange(n_blocks, schedule="static"):
                lo = blk * BLOCK
                hi = lo + BLOCK if lo + BLOCK < n else n
                acc = 0.0
                for i in range(lo, hi):
                    acc = acc + _one(
                        i, tp, m, &row[0, 0], &scale[0, 0], k,
                        &allowed[0, 0], &allow_row[0], &capacity[0, 0], &capacity_end[0, 0],
                        &room_need[0], &year_idx[0],
                        &need[0], &alt_region[0], &dec_region[0], &sector[0], &outcome[0],
                        &chosen[0], &z_own[0, 0], &z_other[0, 0], j,
                        &beta[0, 0], &gamma[0, 0], &lam[0], ap, wp, n_sampled,
                        u, xb, ex, g,
                    )
                    dst = block_g + (blk * n_s + sector[i]) * q
                    for kk in range(q):
                        dst[kk] = dst[kk] + g[kk]
                    if keep:
                        for kk in range(q):
                            per[i, kk] = g[kk]
                block_ll[blk] = acc
            free(u)
            free(xb)
            free(ex)
            free(g)
    for kk in range(n_s * q):
        grad[kk // q, kk % q] = 0.0
    for blk in range(n_blocks):
        total += block_ll[blk]
        for kk in range(n_s * q):
            grad[kk // q, kk % q] += block_g[blk * n_s * q + kk]
    free(block_ll)
    free(block_g)
    return total
