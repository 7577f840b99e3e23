"""The Solara page rendered without a browser (``solara.render``): controls, cards, reset, step."""

from __future__ import annotations

import threading
import time

import ipyvuetify as v
import pytest

solara = pytest.importorskip("solara")

from relocsim.dashboard import app  # noqa: E402
from relocsim.dashboard.state import Difference  # noqa: E402


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def button(rc, css_class: str) -> v.Btn:
    found = [b for b in rc.find(v.Btn).widgets if css_class in (b.class_ or "").split()]
    assert len(found) == 1, f"{css_class}: {len(found)} buttons"
    return found[0]


def status_text(rc) -> str:
    return rc.find(v.Html, class_="run-status").widget.children[0]


@solara.component
def ControlsAndPage():  # noqa: N802 (a component)
    with solara.Column():
        app.Controls()  # the page puts them in the app layout's sidebar
        app.Page()


@pytest.fixture
def rendered():
    # outside a server the page state is one global copy: start each test afresh
    app.session.value = None
    app.policy_a.value = app.default_policy(app._BASE)
    app.compare.value = False
    box, rc = solara.render(ControlsAndPage(), handle_error=False)
    wait_for(lambda: app.session.value is not None and not app.simulate.pending)
    # the page re-renders in the worker's thread after its last update: wait for that too
    wait_for(lambda: not button(rc, "btn-step").disabled)
    yield rc
    app.simulate.cancel()
    rc.close()


def test_page_shows_levers_and_steps_a_year(rendered):
    rc = rendered
    for label in ("Aid portability", "Audi Vorst site"):
        rc.find(v.Html, children=[label]).assert_single()
    assert not button(rc, "btn-step").disabled
    assert status_text(rc).startswith("Ready")
    start = app.session.value.next_year
    button(rc, "btn-step").click()
    wait_for(lambda: app.session.value.years_done == 1 and not app.simulate.pending)
    assert status_text(rc).startswith(f"Year {start}")
    jobs = rc.find(v.Html, attributes={"data-testid": "ind-jobs-A"}).widget.children[0]
    assert jobs != "-" and int(jobs.replace(",", "")) > 0


def test_changing_a_lever_resets_the_run(rendered):
    rc = rendered
    button(rc, "btn-step").click()
    wait_for(lambda: app.session.value.years_done == 1 and not app.simulate.pending)
    app.set_lever("audi_site", "housing")
    wait_for(lambda: not app.simulate.pending)
    assert app.session.value.years_done == 0
    assert app.session.value.runs[0].policy["audi_site"] == "housing"
    app.set_lever("audi_site", app.default_policy(app._BASE)["audi_site"])
    wait_for(lambda: not app.simulate.pending)


def test_play_pressed_while_a_lever_change_is_being_built_plays_the_new_policy(
    rendered, monkeypatch
):
    """The old run leaves the page as soon as a lever changes, and Play stays pressable while
    the new one is built: it must play the new policy, never the old run, and never be lost."""
    rc = rendered
    building, release = threading.Event(), threading.Event()
    real_session = app.Session

    def slow_first_session(*args, **kwargs):
        if not building.is_set():
            building.set()
            release.wait(30)
        return real_session(*args, **kwargs)

    monkeypatch.setattr(app, "Session", slow_first_session)
    app.set_lever("audi_site", "housing")
    assert building.wait(10)
    assert app.session.value is None
    wait_for(lambda: status_text(rc).startswith("Preparing"))
    button(rc, "btn-play").click()
    release.set()
    wait_for(lambda: app.session.value is not None and app.session.value.years_done >= 1)
    assert app.session.value.runs[0].policy["audi_site"] == "housing"
    app.simulate.cancel()
    wait_for(lambda: not app.simulate.pending)


def test_a_rebuild_in_flight_never_turns_play_into_pause(rendered, monkeypatch):
    """Play becomes Pause only when pressed. The worker's swap reaches the browser later, so a
    Pause shown for a rebuild took the clicks sent in between: the build was cancelled with the
    new run installed and nothing played (the browser compare test's 'still Ready', CI)."""
    rc = rendered
    building, release = threading.Event(), threading.Event()
    real_session = app.Session

    def slow_session(*args, **kwargs):
        building.set()
        release.wait(30)
        return real_session(*args, **kwargs)

    monkeypatch.setattr(app, "Session", slow_session)
    app.simulate("reset", 0)  # a rebuild with a run still on the page
    assert building.wait(10)
    assert app.session.value is not None and app.simulate.pending
    button(rc, "btn-play").click()
    release.set()
    wait_for(lambda: app.session.value.years_done >= 1)
    wait_for(lambda: bool(rc.find(v.Btn, class_="btn-pause").widgets))
    button(rc, "btn-pause").click()
    wait_for(lambda: not app.simulate.pending)
    wait_for(lambda: bool(rc.find(v.Btn, class_="btn-play").widgets))


def test_pause_gives_play_back_only_once_the_year_under_way_is_done(rendered, monkeypatch):
    """A Play shown while the worker still simulates its year would show the run go on after
    Pause, and start a second worker beside the first."""
    rc = rendered
    stepping, release = threading.Event(), threading.Event()
    real_step = type(app.session.value).step

    def held_step(self):
        if self.years_done == 1:
            stepping.set()
            release.wait(30)
        return real_step(self)

    monkeypatch.setattr(type(app.session.value), "step", held_step)
    button(rc, "btn-play").click()
    assert stepping.wait(30)
    button(rc, "btn-pause").click()
    time.sleep(0.3)
    assert rc.find(v.Btn, class_="btn-pause").widgets, "Play came back with a year under way"
    release.set()
    wait_for(lambda: bool(rc.find(v.Btn, class_="btn-play").widgets))
    done = app.session.value.years_done
    time.sleep(0.5)
    assert app.session.value.years_done == done == 2


def test_an_error_in_the_worker_is_shown_on_the_page(rendered, monkeypatch):
    rc = rendered

    def broken_step(self):
        raise ImportError("cannot import name '_core' from 'relocsim'")

    monkeypatch.setattr(type(app.session.value), "step", broken_step)
    button(rc, "btn-step").click()
    wait_for(lambda: bool(app.error.value) and not app.simulate.pending)

    def alert_text() -> str:
        alerts = rc.find(v.Alert)
        return " ".join(str(c) for a in alerts.widgets for c in a.children) if alerts else ""

    wait_for(lambda: "_core" in alert_text())  # the page re-renders after the worker's update
    assert "ImportError" in alert_text()


def test_cards_read_differences_and_their_intervals_without_minus_zero():
    assert app.format_indicator("deadweight_share", -0.00001, signed=True) == "0.0 %"
    assert app.format_indicator("jobs", -0.4, signed=True) == "0"
    assert app.format_indicator("jobs", 462.8, signed=True) == "+463"
    assert app.format_indicator("aid_recovered_eur", -2e6, signed=True) == "-2.00 MEUR"
    nan = float("nan")
    assert app.format_difference("jobs", Difference(nan, nan, nan, nan, 0)) == (
        "not defined in these runs"
    )
    assert app.format_difference("jobs", Difference(12, nan, nan, nan, 1)).startswith(
        "one seed pair: no interval"
    )
    assert app.format_difference("jobs", Difference(120, -40, 280, 300, 5)) == (
        "95% CI [-40, +280] over 5 seed pairs: not told from 0"
    )
    assert app.format_difference("jobs", Difference(-450, -522, -378, 120, 5)) == (
        "95% CI [-522, -378] over 5 seed pairs"
    )
    # pairs that all differ by one firm give a zero-width interval: not told from 0
    same = Difference(1, 1, 1, 0, 5)
    assert not same.told_from_zero
    assert app.format_difference("jobs", same) == (
        "the same in all 5 seed pairs: no spread for an interval"
    )
    assert not Difference(0, 0, 0, 0, 5).told_from_zero
