"""Tests of the location-choice kernel (``relocsim._core``) against its NumPy reference."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from relocsim import _rng
from relocsim.choice import STAY, UNPLACED, ChoiceResult, choose_locations

core = pytest.importorskip("relocsim._core")


def make_problem(
    seed: int = 0,
    *,
    n: int = 2000,
    m: int = 60,
    s: int = 3,
    z: int = 12,
    r: int = 4,
    neg_inf: float = 0.1,
    stay: bool = True,
    scale: float = 1.0,
    offset: float = 0.0,
) -> dict[str, np.ndarray]:
    """Random but well-formed inputs of ``choose_locations`` (capacity not included)."""
    g = np.random.default_rng(seed)
    v = offset + g.normal(0, 1, (s, m)) * scale
    v[g.random((s, m)) < neg_inf] = -np.inf
    alt_zone = g.integers(0, z, m)
    zone_region = g.integers(0, r, z)
    tt = g.uniform(0, 2, (z, z))
    tt = (tt + tt.T) / 2
    np.fill_diagonal(tt, 0)
    firm_zone = g.integers(0, z, n)
    stay_u = g.normal(0, 1, n)
    stay_u[g.random(n) < 0.2] = -np.inf
    return {
        "sector_utility": v,
        "alt_zone": alt_zone,
        "alt_region": zone_region[alt_zone],
        "alt_price": g.uniform(0.5, 2, m),
        "travel_time": tt,
        "firm_id": g.permutation(10 * n)[:n].astype(np.int64),
        "firm_sector": g.integers(0, s, n),
        "firm_zone": firm_zone,
        "firm_region": zone_region[firm_zone],
        "firm_alt": g.integers(-1, m, n),
        "firm_area": g.uniform(0.1, 1.0, n),
        "firm_clawback": g.uniform(0, 1, n) * (g.random(n) < 0.3),
        "stay_utility": stay_u if stay else np.full(n, -np.inf),
        "own_nest_utility": g.normal(0, 1, n),
        "other_nest_utility": g.normal(-1, 1, n),
        "b_land": g.uniform(0, 1, s),
        "b_dist": g.uniform(0, 1, s),
        "b_claw": g.uniform(0, 2, s),
        "nest_scale": g.uniform(0.3, 1, s),
    }


def assert_same(a: ChoiceResult, b: ChoiceResult) -> None:
    """Kernel and reference results agree: choices exactly, logsums to 1e-12 relative."""
    mismatch = np.flatnonzero(a.choice != b.choice)
    assert mismatch.size == 0, f"{mismatch.size} choices differ, first firms {mismatch[:10]}"
    np.testing.assert_array_equal(a.nest, b.nest)
    for x, y in ((a.logsum_own, b.logsum_own), (a.logsum_other, b.logsum_other)):
        np.testing.assert_array_equal(np.isneginf(x), np.isneginf(y))
        fin = np.isfinite(y)
        np.testing.assert_allclose(x[fin], y[fin], rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(a.free, b.free)
    assert a.rounds == b.rounds


CASES = [
    pytest.param({}, id="full"),
    pytest.param({"n_sampled": 25}, id="sampled"),
    pytest.param({"capacity": 15.0}, id="capacity"),
    pytest.param({"capacity": 8.0, "n_sampled": 20}, id="capacity-sampled"),
    pytest.param({"stay": False}, id="no-stay"),
    pytest.param({"stay": False, "capacity": 5.0, "max_rounds": 2}, id="capacity-2-rounds"),
    pytest.param({"m": 7, "z": 3, "r": 2, "s": 1, "neg_inf": 0.3}, id="tiny"),
    pytest.param({"m": 333, "z": 40, "r": 9, "s": 4, "n": 1500}, id="odd-m"),
    pytest.param({"m": 200, "z": 200, "r": 150, "n": 800}, id="many-regions"),
    pytest.param({"m": 200, "n": 1500, "capacity": 6.0, "n_sampled": 300}, id="oversampled"),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_matches_reference(case: dict, seed: int) -> None:
    case = dict(case)
    run = {k: case.pop(k) for k in ("n_sampled", "max_rounds") if k in case}
    cap = case.pop("capacity", None)
    p = make_problem(seed, **case)
    if cap is not None:
        m = p["alt_zone"].size
        run["capacity"] = np.random.default_rng(seed + 7).uniform(0, 2 * cap, m)
    kw = {**p, **run, "seed": 11 + seed, "year": 2030}
    a = choose_locations(**kw, threads=2)
    b = choose_locations(**kw, implementation="reference")
    assert_same(a, b)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_every_instruction_set_matches_reference(level: int) -> None:
    p = make_problem(3, m=101, n=1500)
    cap = np.random.default_rng(1).uniform(0, 10, 101)
    before = core.ISA
    try:
        core.select_isa(level)
        for extra in ({}, {"capacity": cap, "n_sampled": 30}):
            a = choose_locations(**p, **extra, seed=5)
            b = choose_locations(**p, **extra, seed=5, implementation="reference")
            assert_same(a, b)
    finally:
        core.select_isa({"baseline": 0, "avx2+fma": 1, "avx512": 2}[before])


def test_threads_and_chunking_do_not_change_results() -> None:
    p = make_problem(4, n=5000, m=90)
    cap = np.random.default_rng(2).uniform(0, 12, 90)
    runs = [
        choose_locations(**p, capacity=cap, n_sampled=n_s, seed=9, threads=t)
        for n_s in (0, 40)
        for t in (1, 2, 3)
    ]
    for first, other in ((runs[0], runs[1]), (runs[0], runs[2]), (runs[3], runs[4])):
        assert_same(first, other)
    # the reference in small chunks is the same as in one chunk
    from relocsim import _reference

    args = {**p, "capacity": cap, "n_sampled": 0, "seed": 9, "year": 0, "max_rounds": 50}
    small = _reference.choose_locations(**args, chunk=7)
    np.testing.assert_array_equal(small[0], runs[0].choice)


def test_capacity_never_exceeded_and_every_firm_accounted_for() -> None:
    p = make_problem(5, n=20000, m=80, stay=False)
    cap = np.random.default_rng(3).uniform(0, 60, 80)
    res = choose_locations(**p, capacity=cap, seed=1)
    c = res.choice
    assert c.dtype == np.int32 and res.nest.dtype == np.int8
    assert np.all((c >= 0) | (c == STAY) | (c == UNPLACED))
    placed = c >= 0
    used = np.bincount(c[placed], weights=p["firm_area"][placed], minlength=80)
    assert np.all(used <= cap + 1e-9)
    assert np.all(res.free >= 0)
    np.testing.assert_allclose(res.free, cap - used, atol=1e-9)
    assert np.all(c[placed] != p["firm_alt"][placed])
    assert np.all(np.isfinite(p["sector_utility"][p["firm_sector"][placed], c[placed]]))
    assert np.all(p["firm_area"][placed] <= cap[c[placed]])
    assert (c == UNPLACED).any() and placed.any()
    assert 1 < res.rounds <= 50
    assert np.all(res.nest[placed] > 0)


def test_no_capacity_single_round_and_free_is_inf() -> None:
    p = make_problem(6, n=500)
    res = choose_locations(**p)
    assert res.rounds == 1
    assert np.all(np.isinf(res.free))
    assert not (res.choice == UNPLACED).any() or np.isneginf(p["stay_utility"]).any()


def _one_profile(n: int, v: np.ndarray, alt_region: np.ndarray) -> dict[str, np.ndarray]:
    """n identical firms (different ids) in region 0, zone 0, no current alternative."""
    m = v.size
    return {
        "sector_utility": v[None, :],
        "alt_zone": np.zeros(m, dtype=np.int64),
        "alt_region": alt_region,
        "alt_price": np.ones(m),
        "travel_time": np.zeros((1, 1)),
        "firm_id": np.arange(n, dtype=np.int64) * 7 + 3,
        "firm_sector": np.zeros(n, dtype=np.int64),
        "firm_zone": np.zeros(n, dtype=np.int64),
        "firm_region": np.zeros(n, dtype=np.int64),
        "firm_alt": np.full(n, -1),
        "firm_area": np.ones(n),
        "firm_clawback": np.full(n, 0.5),
        "stay_utility": np.full(n, 0.3),
        "own_nest_utility": np.full(n, -0.2),
        "other_nest_utility": np.full(n, -0.5),
        "b_land": np.array([0.4]),
        "b_dist": np.array([0.0]),
        "b_claw": np.array([1.0]),
        "nest_scale": np.array([0.6]),
    }


def test_frequencies_match_nested_logit() -> None:
    v = np.array([0.5, -0.3, 1.2, 0.0, 0.7, -1.0, 0.2, np.log(0.5)])
    region = np.array([0, 1, 0, 1, 2, 0, 1, 2])
    n = 200_000
    p = _one_profile(n, v, region)
    res = choose_locations(**p, seed=2024)
    u = v - 0.4 - 0.5 * (region != 0)
    own = region == 0
    ls_own = np.log(np.exp(u[own]).sum())
    ls_oth = np.log(np.exp(u[~own]).sum())
    np.testing.assert_allclose(res.logsum_own, ls_own, rtol=1e-13)
    np.testing.assert_allclose(res.logsum_other, ls_oth, rtol=1e-13)
    top = np.array([0.3, -0.2 + 0.6 * ls_own, -0.5 + 0.6 * ls_oth])
    p_top = np.exp(top) / np.exp(top).sum()
    expected = np.where(own, p_top[1] * np.exp(u - ls_own), p_top[2] * np.exp(u - ls_oth))
    expected = np.append(expected, p_top[0])
    observed = np.bincount(np.where(res.choice == STAY, v.size, res.choice), minlength=v.size + 1)
    assert observed.sum() == n
    chi2 = stats.chisquare(observed, expected * n)
    assert chi2.pvalue > 1e-3, chi2


def test_sampling_logsum_is_unbiased_and_choice_probabilities_converge() -> None:
    g = np.random.default_rng(8)
    m, n = 60, 100_000
    v = g.normal(0, 0.5, m)
    region = (np.arange(m) % 3 == 0).astype(np.int64)  # 40 own (region 0), 20 other
    p = _one_profile(n, v, region)
    p["stay_utility"] = np.full(n, -np.inf)
    p["other_nest_utility"] = np.full(n, -np.inf)  # always the own nest
    u = v - 0.4 - 0.5 * (region != 0)
    own = region == 0
    prob = np.exp(u[own] - np.log(np.exp(u[own]).sum()))
    tv = {}
    for n_sampled in (12, 48):
        res = choose_locations(**p, n_sampled=n_sampled, seed=77)
        # exp(logsum) is an unbiased estimate of the nest's sum of exp(U)
        for est, mask in ((res.logsum_own, own), (res.logsum_other, ~own)):
            e = np.exp(est)
            truth = np.exp(u[mask]).sum()
            se = e.std() / np.sqrt(n)
            assert abs(e.mean() - truth) < 4 * se, (n_sampled, e.mean(), truth, se)
        placed = res.choice >= 0
        assert placed.mean() > 0.99 and np.all(own[res.choice[placed]])
        freq = np.bincount(res.choice[placed], minlength=m)[own] / placed.sum()
        tv[n_sampled] = 0.5 * np.abs(freq - prob).sum()
    # choosing among the sampled alternatives in proportion to exp(U) is a ratio
    # estimator: its probabilities are unbiased only as n_sampled grows (bias O(1/n))
    # (sampling noise alone gives a distance of about 0.008 here)
    assert tv[48] < 0.02
    assert tv[48] < 0.6 * tv[12]


def test_sampling_equal_utilities_is_exactly_uniform() -> None:
    m, n = 40, 120_000
    p = _one_profile(n, np.zeros(m), np.zeros(m, dtype=np.int64))
    p["stay_utility"] = np.full(n, -np.inf)
    res = choose_locations(**p, n_sampled=5, seed=3)
    observed = np.bincount(res.choice, minlength=m)
    assert stats.chisquare(observed).pvalue > 1e-3


def test_large_utilities_stay_finite() -> None:
    p = make_problem(9, n=3000, m=120, scale=400.0, offset=5000.0, neg_inf=0.05)
    p["own_nest_utility"] = p["own_nest_utility"] * 1000
    a = choose_locations(**p, seed=1)
    b = choose_locations(**p, seed=1, implementation="reference")
    assert_same(a, b)
    fin = ~np.isneginf(a.logsum_own)
    assert np.all(np.isfinite(a.logsum_own[fin])) and np.all(a.logsum_own[fin] > 3000)
    # with utility gaps in the hundreds the best available alternative is chosen
    u = (
        p["sector_utility"][p["firm_sector"]]
        - (p["b_land"][p["firm_sector"]] * p["firm_area"])[:, None] * p["alt_price"]
        - p["b_dist"][p["firm_sector"]][:, None]
        * p["travel_time"][p["firm_zone"]][:, p["alt_zone"]]
        - (p["b_claw"][p["firm_sector"]] * p["firm_clawback"])[:, None]
        * (p["alt_region"][None, :] != p["firm_region"][:, None])
    )
    u[np.arange(u.shape[0]), np.maximum(p["firm_alt"], 0)] = np.where(
        p["firm_alt"] >= 0, -np.inf, u[np.arange(u.shape[0]), np.maximum(p["firm_alt"], 0)]
    )
    own = p["alt_region"][None, :] == p["firm_region"][:, None]
    ok = a.choice >= 0
    nest_own = a.nest == 1
    best_own = np.where(own, u, -np.inf).argmax(axis=1)
    best_oth = np.where(~own, u, -np.inf).argmax(axis=1)
    best = np.where(nest_own, best_own, best_oth)
    assert np.mean(a.choice[ok] == best[ok]) > 0.97


@pytest.mark.parametrize("level", [0, 1, 2])
def test_exp_is_accurate(level: int) -> None:
    before = core.ISA
    try:
        core.select_isa(level)
        x = -np.random.default_rng(0).uniform(0, 708, 200_001)  # odd: a vector remainder
        x[:3] = [0.0, -1e-300, -708.0]
        out = np.empty_like(x)
        core.exp_nonpos(x, out)
        ref = np.exp(x)
        assert np.max(np.abs(out - ref) / ref) < 4.5e-16  # within 2 ulp of NumPy's exp
        low = np.array([-708.5, -800.0, -np.inf])
        out_low = np.empty_like(low)
        core.exp_nonpos(low, out_low, repeats=3)
        assert np.all(out_low == 0.0)
    finally:
        core.select_isa({"baseline": 0, "avx2+fma": 1, "avx512": 2}[before])
    with pytest.raises(ValueError, match="out"):
        core.exp_nonpos(x, out[:-1])


def test_subnormals_still_work_after_import() -> None:
    import relocsim._core  # noqa: F401

    assert np.float64(1e-310) * 1.0 > 0
    code = "import numpy as np, relocsim._core; assert np.float64(1e-310) * 1.0 > 0"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_module_reports_build() -> None:
    assert isinstance(core.OPENMP, bool)
    assert core.ISA in ("baseline", "avx2+fma", "avx512")


def test_rng_numpy_twin_matches_plain_python() -> None:
    mask = (1 << 64) - 1

    def mix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    g = 0x9E3779B97F4A7C15
    seed, year, fid = 2**63 + 5, -3, 123456789
    k = mix((seed + g) & mask)
    k = mix(((k ^ (year & mask)) + g) & mask)
    k = mix(((k ^ fid) + g) & mask)
    rk = mix(((k ^ 4) + g) & mask)
    h = mix((rk + 3 * g) & mask)
    keys = _rng.firm_keys(seed, year, np.array([fid]))
    assert int(keys[0]) == k
    assert int(_rng.draw(_rng.round_keys(keys, 4), 2)[0]) == h
    assert _rng.to_uniform(np.array([h], dtype=np.uint64))[0] == (h >> 11) * 2.0**-53
    assert _rng.to_index(np.array([h], dtype=np.uint64), 600)[0] == ((h >> 32) * 600) >> 32


def test_empty_and_degenerate_inputs() -> None:
    p = make_problem(10, n=0)
    for impl in ("kernel", "reference"):
        res = choose_locations(**p, implementation=impl, capacity=np.ones(60))
        assert res.choice.shape == (0,) and res.rounds == 1
    # nothing available at all: UNPLACED; a firm whose region has no alternative
    p = make_problem(11, n=300, stay=False)
    p["sector_utility"][0] = -np.inf
    p["firm_region"][:50] = 99
    a = choose_locations(**p)
    b = choose_locations(**p, implementation="reference")
    assert_same(a, b)
    assert np.all(a.choice[p["firm_sector"] == 0] == UNPLACED)
    assert np.all(np.isneginf(a.logsum_own[:50]))


def _bad(name: str, value: object) -> dict:
    p = make_problem(12, n=20, m=10, z=4)
    p[name] = value
    return p


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("sector_utility", np.zeros(10)),
        ("sector_utility", np.full((3, 10), np.nan)),
        ("sector_utility", np.full((3, 10), np.inf)),
        ("alt_zone", np.full(10, 4)),
        ("alt_zone", np.zeros(9, dtype=int)),
        ("alt_region", np.full(10, -1)),
        ("alt_price", np.zeros(11)),
        ("travel_time", np.zeros((4, 5))),
        ("firm_id", np.zeros(20)),
        ("firm_sector", np.zeros(20)),
        ("firm_sector", np.full(20, 3)),
        ("firm_zone", np.full(20, -1)),
        ("firm_alt", np.full(20, -2)),
        ("firm_alt", np.full(20, 10)),
        ("firm_area", -np.ones(20)),
        ("firm_area", np.full(20, np.nan)),
        ("firm_clawback", np.ones(19)),
        ("stay_utility", np.full(20, np.inf)),
        ("b_land", np.ones(2)),
        ("nest_scale", np.zeros(3)),
        ("firm_region", np.ones(20, dtype=bool)),
    ],
)
def test_validation_names_the_argument(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        choose_locations(**_bad(name, value))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("capacity", -np.ones(10)),
        ("capacity", np.ones(3)),
        ("n_sampled", -1),
        ("threads", 0),
        ("max_rounds", 0),
        ("seed", 1.5),
        ("implementation", "fortran"),
    ],
)
def test_validation_of_options(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        choose_locations(**make_problem(12, n=20, m=10, z=4), **{name: value})


def test_default_threads_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from relocsim.choice import default_threads

    monkeypatch.setenv("RELOCSIM_THREADS", "3")
    assert default_threads() == 3
    monkeypatch.setenv("RELOCSIM_THREADS", "zero")
    with pytest.raises(ValueError, match="RELOCSIM_THREADS"):
        default_threads()
    monkeypatch.delenv("RELOCSIM_THREADS")
    assert default_threads() >= 1


def test_other_dtypes_and_strided_inputs_give_the_same_result() -> None:
    p = make_problem(14, n=600, m=50)
    base = choose_locations(**p, n_sampled=20, seed=4)
    q = dict(p)
    for k in ("alt_zone", "alt_region", "firm_sector", "firm_zone", "firm_region", "firm_alt"):
        q[k] = p[k].astype(np.int32)
    q["firm_id"] = p["firm_id"].astype(np.uint32)
    q["sector_utility"] = np.asfortranarray(p["sector_utility"])
    q["firm_area"] = np.repeat(p["firm_area"], 2)[::2]  # non-contiguous view
    q["alt_price"] = p["alt_price"].tolist()  # plain lists are accepted too
    assert_same(choose_locations(**q, n_sampled=20, seed=4), base)


def test_inputs_are_not_modified() -> None:
    p = make_problem(13, n=400)
    cap = np.full(60, 3.0)
    copies = {k: v.copy() for k, v in p.items()}
    res = choose_locations(**p, capacity=cap)
    for k, v in p.items():
        np.testing.assert_array_equal(v, copies[k])
    assert np.all(cap == 3.0) and not np.shares_memory(res.free, cap)


def test_choice_codes_have_one_owner() -> None:
    import ast
    from pathlib import Path

    from relocsim import _reference, choice, decision

    # no Python module of the package defines its own copy: they import the kernel's
    for path in Path(choice.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, ast.AnnAssign):
                targets = [node.target]
            names = {t.id for t in targets if isinstance(t, ast.Name)}
            assert not names & {"STAY", "UNPLACED"}, f"{path} defines {names}"
    for module in (choice, _reference, decision):
        assert module.UNPLACED == core.UNPLACED
    assert choice.STAY == core.STAY == _reference.STAY
    # the values the compiled loop writes are the ones Python sees: firm 0 can only stay,
    # firm 1 can only move but every alternative is closed to it
    p = make_problem(15, n=2, m=10, z=4, s=2, neg_inf=0.0)
    p["firm_sector"] = np.array([0, 1])
    p["sector_utility"][1] = -np.inf
    p["stay_utility"] = np.array([0.0, -np.inf])
    p["own_nest_utility"] = np.array([-np.inf, 0.0])
    for impl in ("kernel", "reference"):
        res = choose_locations(**p, implementation=impl)
        assert res.choice.tolist() == [core.STAY, core.UNPLACED]


def test_sample_allocation_kernel_matches_reference() -> None:
    from relocsim import _reference

    sizes = [0, 1, 2, 3, 5, 24, 25, 26, 49, 50, 51, 150, 450, 600]
    for n in (1, 2, 5, 49, 50, 51, 600, 1000):
        grid = np.array([(a, b) for a in sizes for b in sizes if a + b > 0])
        ref_own, ref_other = _reference.allocate_sample(n, grid[:, 0], grid[:, 1])
        for (a, b), r_own, r_other in zip(grid, ref_own, ref_other, strict=True):
            n_own, n_other = core.sample_allocation(n, int(a), int(b))
            assert (n_own, n_other) == (r_own, r_other), (n, a, b)
            # every draw is used while some nest is not taken whole
            assert n_own + n_other == min(n, a + b)
            # each non-empty nest gets its half (or all of itself), never more than it has
            assert min(a, n // 2) <= n_own <= a and min(b, n - n // 2) <= n_other <= b


def test_sampling_every_alternative_is_the_full_choice_set() -> None:
    # n_sampled >= M takes both nests whole (expansion factor 1): the full-set draw
    p = make_problem(16, n=3000, m=60)
    cap = np.random.default_rng(4).uniform(0, 12, 60)
    for extra in ({}, {"capacity": cap}):
        full = choose_locations(**p, **extra, seed=8)
        whole = choose_locations(**p, **extra, n_sampled=60, seed=8)
        assert np.mean(full.choice == whole.choice) > 0.999
        for a, b in ((full.logsum_own, whole.logsum_own), (full.logsum_other, whole.logsum_other)):
            np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b))
            fin = np.isfinite(a)
            np.testing.assert_allclose(a[fin], b[fin], rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("own_share", [0.25, 0.1])
def test_stratified_sampling_keeps_nest_shares(own_share: float) -> None:
    """Nest shares with 50 and 5 of 600 sampled pools against the exact nested logit.

    Measured (400k identical firms, utilities N(0, 1)): at 50 of 600 every branch within
    0.11 points of the exact share (uniform sampling over all pools lost 0.8-2.2 points of
    the own nest), at 5 of 600 within 1.0 point (uniform: 9-13 points). The tolerances add
    about 3 standard errors of sampling noise (0.08 points) to those.
    """
    g = np.random.default_rng(5)
    m, n = 600, 400_000
    v = g.normal(0, 1.0, m)
    n_own = int(m * own_share)
    region = np.concatenate([np.zeros(n_own, dtype=np.int64), 1 + np.arange(m - n_own) % 3])
    p = _one_profile(n, v, region)
    u = v - 0.4 - 0.5 * (region != 0)
    own = region == 0
    truth = np.exp(u[own]).sum(), np.exp(u[~own]).sum()
    top = np.array([0.3, -0.2 + 0.6 * np.log(truth[0]), -0.5 + 0.6 * np.log(truth[1])])
    exact = np.exp(top) / np.exp(top).sum()
    for n_sampled, tolerance in ((50, 0.003), (5, 0.015)):
        res = choose_locations(**p, n_sampled=n_sampled, seed=1)
        shares = np.bincount(res.nest, minlength=3) / n
        assert np.all(np.abs(shares - exact) < tolerance), (n_sampled, shares, exact)
        # exp(logsum) of each nest stays an unbiased estimate of its sum of exp(U)
        for est, t in ((res.logsum_own, truth[0]), (res.logsum_other, truth[1])):
            e = np.exp(est)
            assert abs(e.mean() - t) < 4 * e.std() / np.sqrt(n), (n_sampled, e.mean(), t)


def test_benchmark_ceiling_is_the_kernels_exp_loop() -> None:
    from relocsim import bench

    rates = bench.exp_rates(seconds=0.05)
    assert rates["isa"] == core.ISA and rates["openmp"] == core.OPENMP
    assert rates["simd_exp_per_s"] > 0 and rates["numpy_exp_per_s"] > 0
    row = bench.measure(2000, 60, "full", 1, rates, repeats=1)
    assert row["isa"] == core.ISA
    assert row["exp_limit_pairs_per_s"] == rates["simd_exp_per_s"]
    assert row["exp_fraction"] == pytest.approx(row["pairs_per_s"] / rates["simd_exp_per_s"])
