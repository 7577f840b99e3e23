"""End to end: the dashboard served on 127.0.0.1 and driven by Playwright in Debian's chromium.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and the ``browser`` extra
(``.ci/browser-deps.sh`` installs both); skipped cleanly without them. Requests to anything but
the local server are blocked, so a page that needs a CDN fails here as it would offline.
Screenshots go to ``tests/artifacts/``.

The server runs as a user runs it after ``pip install '.[dashboard]'`` in a cloned repository:
relocsim is built and installed (not editable) into a temporary virtual environment, and
``relocsim dashboard`` is started from the root of a clean copy of the repository, whose
``relocsim`` folder holds no compiled kernel; the page must still work.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("RELOCSIM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
LOCAL = ("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")

if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
    pytest.skip("chromium is not installed (.ci/browser-deps.sh)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (.ci/browser-deps.sh)")
pytest.importorskip("solara", reason="solara (pip install 'relocsim[dashboard]')")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


REPOSITORY = Path(__file__).resolve().parents[1]
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", "*.so", "*.c", "artifacts"
)


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """(clean repository copy, ``relocsim`` command of a non-editable install of it)."""
    import solara

    root = tmp_path_factory.mktemp("install")
    clone = root / "relocsim-clone"
    shutil.copytree(REPOSITORY, clone, ignore=NOT_SOURCE)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    wheel = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(clone)],
        capture_output=True,
        text=True,
    )
    if wheel.returncode:
        reason = f"cannot build a relocsim wheel here: {wheel.stderr.strip()[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs what the build needs: a skip there hides a bug
        pytest.skip(reason)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    # the dependencies (solara, mesa, ...) come from where this interpreter finds them
    (site / "_deps.pth").write_text(str(Path(solara.__file__).parents[1]) + "\n")
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index"]
        + [str(p) for p in (root / "dist").glob("relocsim-*.whl")],
        check=True,
    )
    assert not list((clone / "relocsim").glob("_core*.so")), "the copy must hold no kernel"
    # the data files the dependencies install under their prefix (the page's JavaScript in
    # share/solara/cdn, Jupyter's widget configuration), as a full install would hold them
    prefix = Path(solara.__file__).parents[4]
    for data in ("share/solara", "share/jupyter", "etc/jupyter"):
        if (prefix / data).is_dir():
            (venv / data).parent.mkdir(parents=True, exist_ok=True)
            (venv / data).symlink_to(prefix / data)
    return clone, venv / "bin" / "relocsim"


@pytest.fixture(scope="module")
def server(installed):
    """``relocsim dashboard`` on a free port, started from the root of a repository copy over a
    non-editable install; yields its URL; stopped (its own group) after."""
    clone, relocsim = installed
    port = free_port()
    log = (ARTIFACTS / "dashboard-server.log").open("w") if ARTIFACTS.is_dir() else None
    process = subprocess.Popen(
        [str(relocsim), "dashboard", "--port", str(port)],
        cwd=clone,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"dashboard server did not start (exit code {process.poll()})")
        time.sleep(0.3)
    yield url
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if log:
        log.close()


@pytest.fixture(scope="module")
def chromium():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def dash(chromium, server):
    """A fresh page on the dashboard, with console errors and outside requests recorded."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.problems = []
    page.on(
        "console",
        lambda message: (
            page.problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda exc: page.problems.append(f"page error: {exc}"))
    page.on("requestfailed", lambda request: page.problems.append(f"failed: {request.url}"))

    def local_only(route):
        if route.request.url.startswith(LOCAL):
            route.continue_()
        else:
            page.problems.append(f"outside request: {route.request.url}")
            route.abort()

    page.route("**/*", local_only)
    page.goto(server)
    yield page
    context.close()


def status(page) -> str:
    return page.get_by_test_id("run-status").inner_text()


def number(page, test_id: str, timeout_s: float = 10) -> float:
    """The number an element shows, once it shows one (widgets update one after another)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = page.get_by_test_id(test_id).inner_text()
        match = re.search(r"[-+]?\d[\d,]*(\.\d+)?", text)
        if match:
            return float(match.group(0).replace(",", ""))
        assert time.monotonic() < deadline, f"{test_id}: no number in {text!r}"
        time.sleep(0.1)


def wait_year(page, year: int, timeout_s: float = 30) -> None:
    """Wait until the status shows ``year`` or a later one."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = re.search(r"Year (\d{4})", status(page))
        if found and int(found.group(1)) >= year:
            return
        assert time.monotonic() < deadline, f"still {status(page)!r}"
        time.sleep(0.1)


def test_page_loads_offline_steps_and_plays(dash):
    page = dash
    ready = page.get_by_text(re.compile(r"^Ready: \d+ years from \d{4}$"))
    ready.wait_for(timeout=30_000)
    start = int(re.search(r"from (\d{4})", status(page)).group(1))
    assert page.get_by_test_id("ind-jobs-A").inner_text() == "-"

    page.locator(".btn-step").click()
    page.get_by_text(f"Year {start} (1 of").wait_for(timeout=15_000)
    assert number(page, "ind-jobs-A") > 0
    assert number(page, "ind-delocalisations-A") >= 0
    assert "MEUR" in page.get_by_test_id("ind-aid_recovered_eur-A").inner_text()
    assert page.locator("img").count() >= 1  # the jobs figure

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".btn-play").click()
    wait_year(page, start + 3)
    page.locator(".btn-pause").click()
    page.locator(".btn-play").wait_for(timeout=10_000)
    paused = status(page)
    time.sleep(0.8)
    assert status(page) == paused, "the run went on after Pause"

    for index, tab in enumerate(("Jobs", "Flows", "Zones map", "Public money")):
        page.get_by_role("tab", name=tab).click()
        page.get_by_test_id(f"view-{index}").wait_for(timeout=10_000)
        page.locator("img").first.wait_for(timeout=10_000)
        time.sleep(0.3)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-view-{index}.png"), full_page=True)
    page.get_by_text("Tables (CSV)").wait_for(timeout=5_000)
    page.screenshot(path=str(ARTIFACTS / "dashboard-single.png"), full_page=True)
    assert page.problems == []


def test_compare_audi_housing_costs_brussels_jobs(dash):
    page = dash
    page.get_by_text(re.compile(r"^Ready: ")).wait_for(timeout=30_000)
    start = int(re.search(r"from (\d{4})", status(page)).group(1))
    page.locator(".compare-switch").click()
    page.locator(".edit-policy").get_by_role("button", name="B").click()
    page.get_by_text("Editing policy B").wait_for(timeout=10_000)
    page.locator(".lever-audi_site").get_by_role("button", name="housing").click()
    page.get_by_text(re.compile(r"^Ready: ")).wait_for(timeout=60_000)  # five seed pairs
    page.get_by_role("tab", name="Policies").click()
    page.get_by_text("housing").first.wait_for(timeout=10_000)

    page.locator(".btn-play").click()
    wait_year(page, start + 8, timeout_s=60)  # the Audi site opens a few years in
    page.locator(".btn-pause").click()
    page.locator(".btn-play").wait_for(timeout=10_000)

    jobs_a, jobs_b = number(page, "ind-jobs-A"), number(page, "ind-jobs-B")
    assert jobs_b < jobs_a, "a housing estate on the Audi site should cost Brussels jobs"
    assert number(page, "ind-jobs-diff") == pytest.approx(jobs_b - jobs_a, abs=1)  # means, rounded
    interval = page.get_by_test_id("ind-jobs-interval").inner_text()
    assert re.match(r"95% CI \[[-+0-9,]+, [-+0-9,]+\] over 5 seed pairs", interval), interval
    command = page.locator(".compare-command").inner_text()
    assert "relocsim compare --scenario brussels-metro --set" in command, command
    assert "zones.bxl_audi_vorst.site_option=housing" in command, command
    page.get_by_role("tab", name="Jobs").click()
    page.get_by_test_id("view-0").wait_for(timeout=10_000)
    page.locator("img").nth(1).wait_for(timeout=10_000)  # one figure per policy
    page.locator(".effect-figure img").wait_for(timeout=10_000)  # B - A by year
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-compare.png"), full_page=True)
    assert page.problems == []
