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
ever built. The vector loops are small C functions in ``relocsim/src/rs_choice.h``,
compiled three times -- baseline x86-64, AVX2+FMA and AVX-512 -- and picked at import time
from the CPU's features; ``exp`` and the random stream come from ``relocsim/src/rs_simd.h``
(shared with other kernels through ``relocsim/_simd.pxd``): an inline Cody-Waite +
degree-11 polynomial that GCC vectorises at ``-O3`` without ``-ffast-math`` (so no
``crtfastmath.o`` is linked and subnormals keep working in the host process).

With sampling, each firm's draws are stratified by nest (``rs_allocate_sample``): entries
``[0, no)`` of the buffer come from its own region, ``[no, no + nx)`` from the others.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.math cimport INFINITY, exp, log
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t

from relocsim._simd cimport (
    rs_draw,
    rs_exp_nonpos,
    rs_firm_key,
    rs_openmp,
    rs_round_key,
    rs_uniform,
)

cdef extern from "relocsim/src/rs_choice.h" nogil:
    ctypedef struct rs_applicant:
        uint64_t key
        int64_t firm
    void rs_sort_applicants(rs_applicant *a, rs_applicant *tmp, Py_ssize_t n) noexcept
    const char *rs_select_isa(int level) noexcept
    void rs_allocate_sample(int64_t n, int64_t size_own, int64_t size_other, int64_t *n_own,
                            int64_t *n_other) noexcept
    double rs_fill(double *buf, const double *w, const double *price, const double *tt,
                   const double *cap, double area, double cl, double cd, double off,
                   Py_ssize_t lo, Py_ssize_t hi) noexcept
    double rs_max(const double *buf, Py_ssize_t lo, Py_ssize_t hi) noexcept
    double rs_expsum(double *buf, double mx, Py_ssize_t lo, Py_ssize_t hi) noexcept
    Py_ssize_t rs_search(const double *buf, Py_ssize_t lo, Py_ssize_t hi, double target,
                         double *acc) noexcept
    void rs_sample_positions(int64_t *spos, Py_ssize_t k0, Py_ssize_t cnt, int whole,
                             uint64_t rk0, uint64_t first, int64_t base, int64_t size,
                             int64_t gap, int64_t gap_size) noexcept
    double rs_fill_sampled(double *buf, const int64_t *spos, Py_ssize_t k0, Py_ssize_t k1,
                           const double *w, const double *price, const double *tt,
                           const double *cap, int64_t cur, double area, double cl, double cd,
                           double off) noexcept
    void rs_exp_array(const double *x, double *out, Py_ssize_t n) noexcept


# Choice codes written into ``pos_out`` besides alternative indices (>= 0). They are defined
# here only; ``relocsim.choice``, ``relocsim._reference`` and the model import them.
cdef enum:
    CODE_STAY = -1
    CODE_UNPLACED = -2

STAY = CODE_STAY
"""Choice code: the firm chose to stay (upper-level branch)."""
UNPLACED = CODE_UNPLACED
"""Choice code: the firm chose to move but found no alternative with room; it stays put."""

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


def exp_nonpos(const double[::1] x, double[::1] out, Py_ssize_t repeats=1):
    """Write the kernel's vectorised ``exp`` of ``x`` (values <= 0) into ``out``.

    Runs the loop of the instruction set in use (``ISA``) ``repeats`` times without the
    GIL, so that ``relocsim.bench`` can time it as the ceiling of the kernel's throughput.
    """
    if out.shape[0] != x.shape[0]:
        raise ValueError(f"out must have length {x.shape[0]}, got {out.shape[0]}")
    cdef Py_ssize_t r, n = x.shape[0]
    if n == 0:
        return
    with nogil:
        for r in range(repeats):
            rs_exp_array(&x[0], &out[0], n)


def sample_allocation(int64_t n_sampled, int64_t size_own, int64_t size_other):
    """The kernel's split of ``n_sampled`` draws between the nests (twin of
    ``relocsim._reference.allocate_sample``): returns ``(n_own, n_other)``."""
    cdef int64_t a, b
    rs_allocate_sample(n_sampled, size_own, size_other, &a, &b)
    return a, b


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
                       double mx, double sx, double lco, double lcx, int8_t *nest,
                       double *ls_own, double *ls_oth) noexcept nogil:
    """Round 0: store the logsums, draw the branch, store the nest; return the branch.

    ``lco`` / ``lcx``: log of each nest's sampling expansion factor (0 for a full nest).
    """
    cdef Py_ssize_t s = P.sector[i]
    cdef double lso = NEG_INF, lsx = NEG_INF, bo = NEG_INF, bx = NEG_INF
    if mo > NEG_INF:
        lso = mo + log(so) + lco
        bo = P.own_u[i] + P.lam[s] * lso
    if mx > NEG_INF:
        lsx = mx + log(sx) + lcx
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
        b = _upper(P, i, rk, mo, so, mx, sx, 0.0, 0.0, nest, ls_own, ls_oth)
        if b <= 0:
            return CODE_STAY if b == 0 else CODE_UNPLACED
    cdef double u = rs_uniform(rs_draw(rk, SLOT_ALTERNATIVE))
    acc = 0.0
    if b == 1:
        if mo == NEG_INF:
            return CODE_UNPLACED
        k = rs_search(buf, lo, hi, u * so, &acc)
        if k < 0:
            k = _last_positive(buf, lo, hi)
        return <int32_t>k
    if mx == NEG_INF:
        return CODE_UNPLACED
    k = rs_search(buf, 0, lo, u * sx, &acc)
    if k < 0:
        k = rs_search(buf, hi, M, u * sx, &acc)
    if k < 0:
        k = _last_positive(buf, hi, M)
    if k < 0:
        k = _last_positive(buf, 0, lo)
    return <int32_t>k


cdef inline double _log_factor(int64_t size, int64_t count) noexcept nogil:
    """Log of a nest's expansion factor ``size / count`` (0 for an empty nest)."""
    return log(<double>size / <double>count) if count > 0 else 0.0


cdef inline int32_t _firm_sampled(const Problem *P, Py_ssize_t i, uint64_t rnd, double *buf,
                                  int64_t *spos, int8_t *nest, double *ls_own,
                                  double *ls_oth) noexcept nogil:
    """Same as ``_firm_full`` over the firm's stratified sample (fixed in round 0).

    Entries [0, no) are drawn from the own-region nest, [no, no + nx) from the other nest
    (``rs_allocate_sample``); a later round recomputes only the chosen nest's entries.
    """
    cdef Py_ssize_t s = P.sector[i], r = P.fregion[i], k
    cdef int64_t lo = P.rstart[r], hi = P.rend[r], cur = _cur(P, i)
    cdef int64_t size_own = hi - lo, size_oth = P.m_real - size_own, no, nx
    cdef uint64_t key = rs_firm_key(P.seed, P.year, <uint64_t>P.fid[i])
    cdef uint64_t rk0 = rs_round_key(key, 0)
    cdef uint64_t rk = rs_round_key(key, rnd)
    cdef const double *w = P.W + s * P.M
    cdef const double *t = P.tt + P.zone[i] * P.M
    cdef double area = P.area[i], cl = P.bl[s] * area, cd = P.bd[s], cc = P.bc[s] * P.claw[i]
    cdef double mo = NEG_INF, mx = NEG_INF, so = 0.0, sx = 0.0, acc = 0.0
    cdef int b = 0
    rs_allocate_sample(P.n_sampled, size_own, size_oth, &no, &nx)
    if rnd > 0:
        b = nest[i]
    if b != 2 and no > 0:
        rs_sample_positions(spos, 0, no, no == size_own, rk0, SLOT_SAMPLE, lo, size_own,
                            size_own, 0)
        mo = rs_fill_sampled(buf, spos, 0, no, w, P.price, t, P.cap, cur, area, cl, cd, 0.0)
        if mo > NEG_INF:
            so = rs_expsum(buf, mo, 0, no)
    if b != 1 and nx > 0:
        rs_sample_positions(spos, no, nx, nx == size_oth, rk0, SLOT_SAMPLE, 0, size_oth, lo,
                            size_own)
        mx = rs_fill_sampled(buf, spos, no, no + nx, w, P.price, t, P.cap, cur, area, cl, cd,
                             cc)
        if mx > NEG_INF:
            sx = rs_expsum(buf, mx, no, no + nx)
    if rnd == 0:
        b = _upper(P, i, rk, mo, so, mx, sx, _log_factor(size_own, no),
                   _log_factor(size_oth, nx), nest, ls_own, ls_oth)
        if b <= 0:
            return CODE_STAY if b == 0 else CODE_UNPLACED
    cdef double u = rs_uniform(rs_draw(rk, SLOT_ALTERNATIVE))
    if b == 1:
        if mo == NEG_INF:
            return CODE_UNPLACED
        k = rs_search(buf, 0, no, u * so, &acc)
        if k < 0:
            k = _last_positive(buf, 0, no)
    else:
        if mx == NEG_INF:
            return CODE_UNPLACED
        k = rs_search(buf, no, no + nx, u * sx, &acc)
        if k < 0:
            k = _last_positive(buf, no, no + nx)
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
    updated in place otherwise. ``scratch`` is (threads, max(M, n_sampled)),
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
                        pos_out[i] = _firm_sampled(&P, i, rnd, sbuf, spos, &nest[0],
                                                   &ls_own[0], &ls_oth[0])
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
                pos_out[active[j]] = CODE_UNPLACED
        for j in prange(N, schedule="static", num_threads=threads):
            if pos_out[j] >= 0:
                pos_out[j] = <int32_t>perm[pos_out[j]]
    return rounds
