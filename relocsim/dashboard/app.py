"""The Solara page of the dashboard: controls, indicator cards, views, compare mode, downloads.

Serve it with ``relocsim dashboard`` (or ``solara run relocsim/dashboard/app.py``). Years are
simulated in a worker thread (``solara.lab.task``): the page stays live while a run goes, Pause
cancels it between two years, and any lever change rebuilds the run(s) from the start year.
The scenario comes from ``RELOCSIM_DASHBOARD_SCENARIO`` (default ``brussels-metro``).
"""

# Solara components are named like classes (Page, Layout): N802 does not apply here.
# ruff: noqa: N802

from __future__ import annotations

import io
import math
import os
import traceback
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import solara
import solara.lab

from relocsim.dashboard import figures
from relocsim.dashboard.state import (
    DEFAULT_PAIRS,
    INDICATOR_NAMES,
    Difference,
    Indicators,
    Lever,
    Session,
    available_levers,
    default_policy,
)
from relocsim.experiments.compare import DEFAULT_SEEDS
from relocsim.scenarios import Scenario, ScenarioError, load_scenario

SCENARIO_ENV = "RELOCSIM_DASHBOARD_SCENARIO"
CARD_TITLES = {
    "jobs": ("Brussels jobs", "end of the year"),
    "low_skilled_jobs": ("Low-skilled jobs", "Brussels, end of the year"),
    "delocalisations": ("Delocalisations", "firms leaving Brussels this year"),
    "aid_recovered_eur": ("Aid recovered", "by Brussels, whole run"),
    "deadweight_share": ("Deadweight share", "of Brussels aid this year"),
}
MAX_PAIRS = 10  # more pairs: relocsim sweep, which runs them in parallel and resumes
VIEWS = ("Jobs", "Flows", "Zones map", "Public money", "Policies")
VIEW_CAPTIONS = (
    "Jobs by region, and one region's jobs by sector, at the end of each year; in compare mode, "
    "B - A of the region's jobs by year over the seed pairs, with its 95% interval.",
    "Firms (or jobs) moving between regions: rows are origins, columns destinations; the "
    "diagonal counts moves inside a region.",
    "Zones at their coordinates, coloured by the occupied share of developable land or by the "
    "land price, sized by jobs (last simulated year).",
    "Public money by region summed over the run (MEUR) and the net public cost per year.",
    "The lever values of each policy.",
)


@lru_cache(maxsize=4)
def base_scenario(name: str) -> Scenario:
    """The scenario the page starts from (loaded once per server)."""
    return load_scenario(name)


def scenario_name() -> str:
    return os.environ.get(SCENARIO_ENV, "brussels-metro")


_BASE = base_scenario(scenario_name())
_LEVERS = available_levers(_BASE)

# ---- page state (solara keeps one copy per browser tab)

policy_a = solara.reactive(default_policy(_BASE))
policy_b = solara.reactive(default_policy(_BASE))
compare = solara.reactive(False)
editing = solara.reactive("A")
seed = solara.reactive(0)
pairs = solara.reactive(DEFAULT_PAIRS)  # seed pairs of compare mode
horizon = solara.reactive(_BASE.years)
session: solara.Reactive[Session | None] = solara.reactive(None)
tick = solara.reactive(0)  # bumped after every simulated year (the session mutates in place)
play_pressed = solara.reactive(False)  # the worker's task is a Play, not a rebuild or a Step
error = solara.reactive("")
view = solara.reactive(0)
jobs_region = solara.reactive("Brussels")
flow_measure = solara.reactive("firms")
flow_last_year = solara.reactive(False)
zone_colour = solara.reactive("occupancy")


def _seeds_text(first: int, count: int) -> str:
    return str(first) if count == 1 else f"{first}-{first + count - 1}"


def _policies() -> list[dict[str, Any]]:
    return [policy_a.value, policy_b.value] if compare.value else [policy_a.value]


@solara.lab.task(prefer_threaded=True)
def simulate(command: str = "reset", years: int = 0) -> None:
    """Worker: rebuild the run(s) on ``"reset"``, then simulate up to ``years`` years.

    Any error (a lever combination the scenario rejects, a broken install) is shown on the page
    as well as in the server log: the page must never wait for a worker that has died.
    """
    try:
        _simulate(command, years)
    except Exception as exc:
        traceback.print_exc()
        error.value = f"The simulation stopped: {type(exc).__name__}: {exc}"


def _simulate(command: str, years: int) -> None:
    current = session.value
    if command == "reset" or current is None:
        try:
            current = Session(
                _BASE,
                _policies(),
                seed=seed.value,
                horizon=horizon.value,
                pairs=pairs.value,
                source=scenario_name(),
            )
        except ScenarioError as exc:  # a lever combination the scenario rejects
            error.value = str(exc)
            return
        if not simulate.is_current():
            return
        error.value = ""
        session.value = current
        tick.value += 1
    todo = min(years, current.horizon - current.years_done)
    for done in range(todo):
        if not simulate.is_current():
            return
        current.step()
        simulate.progress = 100.0 * (done + 1) / todo
        tick.value += 1


def restart() -> None:
    """A lever, the seed or the compare switch changed: start the run(s) again.

    The old run is dropped at once, not when the new one is built: until then the page would
    show the old policy's results under the new levers, and a Play pressed in between would
    play them."""
    session.value = None
    play_pressed.value = False
    simulate("reset", 0)


def play() -> None:
    play_pressed.value = True
    simulate("play", 10**6)


def step() -> None:
    play_pressed.value = False
    simulate("step", 1)


def set_lever(key: str, value: Any) -> None:
    target = policy_b if compare.value and editing.value == "B" else policy_a
    if target.value.get(key) == value:
        return
    target.value = {**target.value, key: value}
    restart()


# ---- controls


@solara.component
def LeverControl(lever: Lever, value: Any):
    def on_value(new: Any, key: str = lever.key) -> None:
        set_lever(key, new)

    if lever.kind == "select":
        with solara.Column(gap="0px", classes=[f"lever-{lever.key}"]):
            solara.Text(lever.label, style={"font-size": "0.8rem", "color": "#555"})
            solara.ToggleButtonsSingle(
                value=value, values=list(lever.options), on_value=on_value, dense=True
            )
    elif lever.kind == "bool":
        solara.Switch(
            label=lever.label, value=bool(value), on_value=on_value, classes=[f"lever-{lever.key}"]
        )
    elif lever.kind == "int":
        solara.SliderInt(
            f"{lever.label}: {int(value)}",
            value=int(value),
            min=int(lever.low),
            max=int(lever.high),
            step=int(lever.step),
            on_value=on_value,
        )
    else:
        solara.SliderFloat(
            f"{lever.label}: {float(value):g}",
            value=float(value),
            min=lever.low,
            max=lever.high,
            step=lever.step,
            on_value=on_value,
        )


@solara.component
def Controls():
    policy = policy_b.value if compare.value and editing.value == "B" else policy_a.value

    def on_compare(on: bool) -> None:
        compare.value = on
        if not on:
            editing.value = "A"
        restart()

    def on_seed(value: int | None) -> None:
        seed.value = int(value or 0)
        restart()

    def on_horizon(value: int) -> None:
        horizon.value = int(value)
        if session.value is not None:
            session.value.horizon = int(value)
            tick.value += 1

    def on_pairs(value: int) -> None:
        pairs.value = int(value)
        restart()

    def copy_a_to_b() -> None:
        policy_b.value = dict(policy_a.value)
        restart()

    with solara.Column(gap="8px"):
        solara.Text(
            f"Scenario: {_BASE.name}, from {_BASE.start_year}", style={"font-weight": "600"}
        )
        solara.InputInt("Seed", value=seed.value, on_value=on_seed)
        solara.SliderInt(
            f"Years to run: {horizon.value}",
            value=horizon.value,
            min=1,
            max=max(60, _BASE.years),
            on_value=on_horizon,
        )
        solara.Switch(
            label="Compare two policies",
            value=compare.value,
            on_value=on_compare,
            classes=["compare-switch"],
        )
        if compare.value:
            with solara.Row():
                solara.ToggleButtonsSingle(
                    value=editing.value,
                    values=["A", "B"],
                    on_value=editing.set,
                    classes=["edit-policy"],
                )
                solara.Button("Copy A to B", on_click=copy_a_to_b, text=True, small=True)
            with solara.Column(gap="0px", classes=["pairs-slider"]):
                solara.SliderInt(
                    f"Seed pairs: {pairs.value}",
                    value=pairs.value,
                    min=1,
                    max=MAX_PAIRS,
                    on_value=on_pairs,
                )
                solara.Text(
                    f"Both policies run on seeds {_seeds_text(seed.value, pairs.value)}: the "
                    "cards give their means and B - A with its 95% interval; the figures show "
                    f"seed {seed.value}.",
                    style={"font-size": "0.75rem", "color": "#555"},
                )
            solara.Text(f"Editing policy {editing.value}", style={"font-weight": "bold"})
        for lever in _LEVERS:
            if not lever.advanced:
                LeverControl(lever, policy[lever.key])
        with solara.Details("Advanced: behaviour and land market"), solara.Column():
            for lever in _LEVERS:
                if lever.advanced:
                    LeverControl(lever, policy[lever.key])


# ---- header, cards


@solara.component
def RunBar():
    _ = tick.value
    current = session.value
    running = simulate.pending
    # Only a press of Play turns it into Pause. While a run is being built Play stays (pressed,
    # it builds and plays): a button swapped for Pause by the worker is swapped in the browser
    # later, so a click sent in between would reach Pause and cancel the build.
    playing = running and play_pressed.value
    with solara.Column(gap="4px"):
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.Button(
                "Step",
                icon_name="mdi-step-forward",
                disabled=running or current is None or current.finished,
                on_click=step,
                classes=["btn-step"],
            )
            if playing:
                solara.Button(
                    "Pause",
                    icon_name="mdi-pause",
                    on_click=simulate.cancel,  # Play returns when the year under way ends
                    classes=["btn-pause"],
                    color="warning",
                )
            else:
                solara.Button(
                    "Play",
                    icon_name="mdi-play",
                    color="primary",
                    disabled=current is not None and current.finished,
                    on_click=play,
                    classes=["btn-play"],
                )
            solara.Button("Reset", icon_name="mdi-restore", on_click=restart, classes=["btn-reset"])
            if current is None:
                status = "Preparing the model..."
            elif current.years_done == 0:
                status = f"Ready: {current.horizon} years from {current.next_year}"
            else:
                status = (
                    f"Year {current.next_year - 1} "
                    f"({current.years_done} of {current.horizon} years)"
                )
            solara.v.Html(
                tag="span",
                children=[status],
                class_="run-status",
                attributes={"data-testid": "run-status"},
                style_="font-size:1.1rem;font-weight:600;margin-left:12px",
            )
        progress = simulate.progress if running and simulate.progress else running
        solara.ProgressLinear(progress if running else False)
        if error.value:
            solara.Error(error.value)


def format_indicator(name: str, value: float, signed: bool = False) -> str:
    """The text of an indicator value ("56,151", "0.39 MEUR", "99.8 %")."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if name == "aid_recovered_eur":
        shown, unit, digits = value / 1e6, " MEUR", 2
    elif name == "deadweight_share":
        shown, unit, digits = 100 * value, " %", 1
    else:
        shown, unit, digits = value, "", 0
    shown = round(shown, digits) + 0.0  # a difference that rounds to 0 shows as 0, not -0
    sign = "+" if signed and shown > 0 else ""
    return f"{sign}{shown:,.{digits}f}{unit}"


def format_difference(name: str, diff: Difference) -> str:
    """The interval line of a B - A card ("95% CI [-12, +40] over 5 seed pairs: not told
    from 0")."""
    if diff.pairs == 0:
        return "not defined in these runs"
    if diff.pairs == 1:
        return "one seed pair: no interval (more pairs give one)"
    if diff.same_in_every_pair:
        return f"the same in all {diff.pairs} seed pairs: no spread for an interval"
    low, high = (format_indicator(name, v, signed=True) for v in (diff.low, diff.high))
    verdict = "" if diff.told_from_zero else ": not told from 0"
    return f"95% CI [{low}, {high}] over {diff.pairs} seed pairs{verdict}"


@solara.component
def IndicatorCard(name: str, values: list[tuple[str, Indicators]], diff: Difference | None):
    title, subtitle = CARD_TITLES[name]
    with solara.Card(
        style={"min-width": "170px", "flex": "1", "padding": "8px 12px"},
        classes=[f"card-{name}"],
        margin=0,
    ):
        solara.v.Html(tag="div", children=[title], style_="font-size:1rem;font-weight:500")
        solara.v.Html(tag="div", children=[subtitle], style_="font-size:0.75rem;color:#777")
        for label, indicators in values:
            with solara.Row(style={"align-items": "baseline"}):
                if len(values) > 1:
                    solara.Text(f"{label}:", style={"color": "#777"})
                solara.v.Html(
                    tag="span",
                    children=[format_indicator(name, getattr(indicators, name))],
                    attributes={"data-testid": f"ind-{name}-{label}"},
                    style_="font-size:1.5rem;font-weight:600",
                )
        if diff is not None:
            solara.v.Html(
                tag="div",
                children=["B - A: " + format_indicator(name, diff.mean, signed=True)],
                attributes={"data-testid": f"ind-{name}-diff"},
                style_="color:#1f4e9c;font-weight:600",
            )
            solara.v.Html(
                tag="div",
                children=[format_difference(name, diff)],
                attributes={"data-testid": f"ind-{name}-interval"},
                style_="font-size:0.75rem;color:#1f4e9c",
            )


@solara.component
def Cards():
    _ = tick.value
    current = session.value
    if current is None:
        return solara.Info("Building the model...")
    values = list(zip("AB", current.indicators(), strict=False))
    diffs = current.difference()
    with solara.Row(style={"flex-wrap": "wrap", "gap": "8px"}):
        for name in INDICATOR_NAMES:
            IndicatorCard(name, values, None if diffs is None else diffs[name])
    command = current.compare_command()
    if command:
        solara.v.Html(
            tag="div",
            children=[f"The same on {DEFAULT_SEEDS} seed pairs, from a shell: {command}"],
            class_="compare-command",
            style_="font-size:0.75rem;color:#555;font-family:monospace;word-break:break-all",
        )


# ---- views


@solara.component
def Figure(make: Callable[[], Any], dependencies: list[Any]):
    """A matplotlib figure drawn once per change of ``dependencies``, shown as a PNG."""

    def render() -> bytes:
        buffer = io.BytesIO()
        make().savefig(buffer, format="png", dpi=90)
        return buffer.getvalue()

    png = solara.use_memo(render, dependencies)
    with solara.Column(style={"max-width": "1000px", "width": "100%"}):
        solara.Image(png, width="100%")


@solara.component
def SideBySide(make: Callable[[dict[str, Any], str], Any], options: list[Any]):
    """One figure per run (two columns in compare mode)."""
    current = session.value
    runs = current.runs if current is not None else []
    version = (id(current), tick.value, *options)
    with solara.Columns([1] * max(len(runs), 1)):
        for run in runs:
            title = f"Policy {run.label}" if len(runs) > 1 else ""
            Figure(lambda run=run, title=title: make(run.tables, title), [*version, run.label])


@solara.component
def Effect(region: str):
    """B - A of the region's jobs and low-skilled jobs by year, over the seed pairs."""
    current = session.value

    def make() -> Any:
        effects = {
            f"{region} jobs": current.effect_by_year(region, "jobs"),
            f"{region} low-skilled jobs": current.effect_by_year(region, "low_skilled_jobs"),
        }
        return figures.effect_figure(effects)

    with solara.Column(classes=["effect-figure"]):
        Figure(make, [id(current), tick.value, region, "effect"])


def _regions() -> list[str]:
    return list(_BASE.regions)


@solara.component
def Views():
    _ = tick.value
    with solara.lab.Tabs(value=view.value, on_value=view.set):
        for label in VIEWS:
            solara.lab.Tab(label)
    index = view.value
    if session.value is None:
        return
    solara.v.Html(
        tag="div",
        children=[VIEW_CAPTIONS[index]],
        attributes={"data-testid": f"view-{index}"},
        style_="color:#555;font-size:0.9rem",
    )
    if index == 0:
        solara.Select("Sectors of region", values=_regions(), value=jobs_region)
        region = jobs_region.value
        SideBySide(lambda t, title: figures.jobs_figure(t.get("yearly"), region, title), [region])
        if session.value.compare:
            Effect(region)
    elif index == 1:
        with solara.Row():
            solara.ToggleButtonsSingle(value=flow_measure, values=["firms", "jobs"])
            solara.Switch(label="last year only", value=flow_last_year)
        measure, last = flow_measure.value, flow_last_year.value
        SideBySide(
            lambda t, title: figures.flows_figure(t.get("flows"), _regions(), last, measure, title),
            [measure, last],
        )
    elif index == 2:
        solara.ToggleButtonsSingle(value=zone_colour, values=["occupancy", "price"])
        colour = zone_colour.value
        SideBySide(lambda t, title: figures.zones_figure(t.get("zones"), colour, title), [colour])
    elif index == 3:
        SideBySide(lambda t, title: figures.accounts_figure(t.get("accounts"), title), [])
    else:
        solara.DataFrame(session.value.policy_table().reset_index(names="lever"))


@solara.component
def Downloads():
    _ = tick.value
    current = session.value
    if current is None or current.years_done == 0:
        solara.Text("Downloads appear after the first simulated year.", style={"color": "#777"})
        return
    stem = f"relocsim-{current.scenario.name}-seed{current.seed}-{current.next_year - 1}"
    regions = _regions()
    with solara.Row(style={"flex-wrap": "wrap"}):
        solara.FileDownload(
            lambda: current.tables_zip("csv"), f"{stem}-tables-csv.zip", label="Tables (CSV)"
        )
        solara.FileDownload(
            lambda: current.tables_zip("parquet"),
            f"{stem}-tables-parquet.zip",
            label="Tables (Parquet)",
        )
        solara.FileDownload(
            lambda: figures.figures_zip({r.label: r.tables for r in current.runs}, regions),
            f"{stem}-figures.zip",
            label="Figures (PNG)",
        )


@solara.component
def Page():
    solara.Title("relocsim dashboard")
    solara.use_effect(lambda: restart() if session.value is None else None, [])
    with solara.Sidebar():
        Controls()
    with solara.Column(gap="12px", style={"padding": "8px"}):
        solara.v.Html(
            tag="h2",
            children=["Firm relocation in the Brussels metropolitan area"],
            style_="font-weight:500;margin:0",
        )
        RunBar()
        Cards()
        Views()
        Downloads()


@solara.component
def Layout(children: list[Any] = []):  # noqa: B006 (Solara's signature)
    return solara.AppLayout(children=children, title="relocsim", sidebar_open=True)
