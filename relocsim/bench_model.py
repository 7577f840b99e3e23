"""Benchmark of whole simulated years: the default scenario and the synthetic national scale.

``relocsim bench model [--json] [--quick]`` measures, in one process:

- the default ``brussels-metro`` scenario over 30 years (wall time, time per year), and one year
  with the plain NumPy location choice instead of the compiled kernel, as the reference;
- the dashboard's year in compare mode (two policies on its default seed pairs stepped and
  their live tables grown), with the same models' bare years as the reference;
- the synthetic scenario of 1,000,000 firms x 600 zones: set-up time, time per simulated year
  with its split by stage of ``RelocationModel.step`` (and the kernel inside the decision), the
  same year with the NumPy reference, and the process's peak memory (RSS).

Times are best-of or means on a shared, noisy machine (the load average is printed with them);
the ratios against the reference measured in the same run are what to compare between machines.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from relocsim import decision
from relocsim.dashboard.state import DEFAULT_PAIRS, Session, default_policy
from relocsim.model import RelocationModel
from relocsim.scenarios import load_scenario

STAGES = (
    "_demography",
    "_space_need",
    "_decide",
    "_relocate",
    "_land_market",
    "_public_accounts",
    "_collect",
)
"""The stage methods of ``RelocationModel.step``, in order."""


@dataclass
class Measurement:
    """One benchmark line."""

    scenario: str
    what: str
    seconds: float
    reference_seconds: float | None = None
    peak_rss_gb: float | None = None
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return None if not self.reference_seconds else self.reference_seconds / self.seconds


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _timer(seconds: dict[str, float], name: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started

    return timed


@contextmanager
def stage_timer(model: RelocationModel) -> Iterator[dict[str, float]]:
    """Seconds spent in each stage of ``model.step`` (and in the location-choice kernel call,
    ``kernel``, part of ``decide``) while the block runs."""
    seconds: dict[str, float] = {}
    for stage in STAGES:
        setattr(model, stage, _timer(seconds, stage.strip("_"), getattr(model, stage)))
    kernel = decision.choose_locations
    decision.choose_locations = _timer(seconds, "kernel", kernel)
    try:
        yield seconds
    finally:
        decision.choose_locations = kernel
        for stage in STAGES:
            delattr(model, stage)


def _year_with(scenario: str, implementation: str, warm_years: int, seed: int = 0) -> float:
    """Time of year ``warm_years + 1`` of a fresh model using ``implementation``."""
    model = RelocationModel(scenario, seed=seed, implementation=implementation)
    for _ in range(warm_years):
        model.step()
    started = time.perf_counter()
    model.step()
    return time.perf_counter() - started


def bench_default(years: int) -> list[Measurement]:
    started = time.perf_counter()
    model = RelocationModel("brussels-metro", seed=0)
    setup = time.perf_counter() - started
    model.run(years)
    total = time.perf_counter() - started
    started = time.perf_counter()  # a sweep's policy variant: the burn-in is cached, not rerun
    RelocationModel("brussels-metro", seed=0, overrides={"policies.speculation_tax": 0.01})
    variant_setup = time.perf_counter() - started
    kernel_year = _year_with("brussels-metro", "kernel", 2)
    reference_year = _year_with("brussels-metro", "reference", 2)
    dashboard_year, bare_years = _dashboard_year("brussels-metro", warm_years=2)
    return [
        Measurement("brussels-metro", "setup", setup),
        Measurement("brussels-metro", f"{years} years incl. setup and results", total),
        Measurement("brussels-metro", "setup of a policy variant (burn-in cached)", variant_setup),
        Measurement("brussels-metro", "one year (3rd)", kernel_year, reference_year),
        Measurement(
            "brussels-metro",
            f"dashboard year, two policies x {DEFAULT_PAIRS} seed pairs (3rd)",
            dashboard_year,
            bare_years,
        ),
    ]


def _dashboard_year(scenario: str, warm_years: int) -> tuple[float, float]:
    """Seconds of the dashboard's compare-mode year ``warm_years + 1`` (two runs a seed pair and
    their live tables) and of the same year of the bare models: the tables' cost is what they
    differ by."""
    policy = default_policy(load_scenario(scenario))
    session = Session(scenario, [policy, policy], seed=0, pairs=DEFAULT_PAIRS)
    for _ in range(warm_years):
        session.step()
    started = time.perf_counter()
    session.step()
    dashboard = time.perf_counter() - started
    bare = [RelocationModel(scenario, seed=k) for k in range(DEFAULT_PAIRS) for _ in range(2)]
    for model in bare:
        for _ in range(warm_years):
            model.step()
    started = time.perf_counter()
    for model in bare:
        model.step()
    return dashboard, time.perf_counter() - started


def bench_synthetic(n_firms: int, n_zones: int, years: int) -> list[Measurement]:
    spec = f"synthetic:n_firms={n_firms},n_zones={n_zones},n_regions=3,seed=0"
    started = time.perf_counter()
    model = RelocationModel(spec, seed=0)
    setup = time.perf_counter() - started
    per_year = []
    with stage_timer(model) as stages:
        for _ in range(years):
            started = time.perf_counter()
            model.step()
            per_year.append(time.perf_counter() - started)
    model.implementation = "reference"
    started = time.perf_counter()
    model.step()
    reference = time.perf_counter() - started
    model.implementation = "kernel"
    started = time.perf_counter()
    model.step()
    kernel = time.perf_counter() - started
    label = f"synthetic {n_firms:,} firms x {n_zones} zones"
    return [
        Measurement(label, "setup", setup, peak_rss_gb=_peak_rss_gb()),
        Measurement(
            label,
            f"mean year over {years}",
            sum(per_year) / years,
            stages={name: t / years for name, t in stages.items()},
        ),
        Measurement(
            label,
            "one year, kernel vs NumPy reference",
            kernel,
            reference,
            peak_rss_gb=_peak_rss_gb(),
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """``relocsim bench model [--json] [--quick]``."""
    parser = argparse.ArgumentParser(
        prog="relocsim bench model", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per measurement")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke test")
    args = parser.parse_args(argv)
    n_firms, n_zones, years = (20_000, 60, 2) if args.quick else (1_000_000, 600, 3)
    load = os.getloadavg()
    print(
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs",
        file=sys.stderr,
    )
    measurements = bench_default(3 if args.quick else 30)
    measurements += bench_synthetic(n_firms, n_zones, years)
    for m in measurements:
        if args.json:
            print(json.dumps({**asdict(m), "ratio": m.ratio}))
        else:
            ratio = (
                f"  reference {m.reference_seconds:.2f} s  ratio {m.ratio:.1f}x" if m.ratio else ""
            )
            memory = f"  peak RSS {m.peak_rss_gb:.2f} GB" if m.peak_rss_gb else ""
            print(f"{m.scenario:38s} {m.what:40s} {m.seconds:7.2f} s{ratio}{memory}")
            if m.stages:
                split = ", ".join(f"{name} {t:.2f}" for name, t in m.stages.items())
                print(f"{'':38s} {'  by stage (s)':40s} {split}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
