"""``relocsim dashboard``: serve the dashboard page with Solara, offline.

The page's JavaScript comes from the ``solara-assets`` package (the ``dashboard`` extra), so no
CDN is needed; telemetry is off. The server imports the page as a module of the relocsim that
runs this command (``relocsim.dashboard.app``) with Python's ``-P``: started in a source checkout
over a regular install, it must not pick up the checkout's uncompiled ``relocsim`` folder from
the working directory.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from relocsim.scenarios import ScenarioError, load_scenario

APP = "relocsim.dashboard.app"
"""The page, imported by module name (a file path would put its folder first on sys.path)."""


def server_command(port: int, host: str, reload: bool = False) -> list[str]:
    """The ``solara run`` command line that serves the page."""
    command = [
        sys.executable,
        "-P",  # no working directory on sys.path: the installed relocsim, not a checkout's
        "-m",
        "solara",
        "run",
        APP,
        "--port",
        str(port),
        "--host",
        host,
        "--no-open",
        "--no-check-version",
    ]
    if not reload:
        command.append("--production")
    return command


def server_environment(scenario: str) -> dict[str, str]:
    """The environment of the server: scenario, telemetry off, no CDN."""
    env = dict(os.environ)
    env.update(
        {
            "RELOCSIM_DASHBOARD_SCENARIO": scenario,
            "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
            "SOLARA_CDN": env.get("SOLARA_CDN", ""),
            "MPLBACKEND": "Agg",
        }
    )
    return env


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``relocsim dashboard``."""
    parser = argparse.ArgumentParser(
        prog="relocsim dashboard", description="serve the interactive dashboard (Solara)"
    )
    parser.add_argument(
        "--scenario",
        default="brussels-metro",
        help="built-in name, folder or .toml path (default: brussels-metro)",
    )
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    parser.add_argument(
        "--reload",
        action="store_true",
        help="development mode: reload the page when its code changes",
    )
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        import solara  # noqa: F401
    except ImportError:
        print(
            "relocsim: error: the dashboard needs Solara: pip install 'relocsim[dashboard]'",
            file=sys.stderr,
        )
        return 2
    try:
        load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"relocsim: error: {exc}", file=sys.stderr)
        return 2
    scenario = args.scenario
    if Path(scenario).exists():
        scenario = str(Path(scenario).resolve())
    print(f"relocsim dashboard: http://{args.host}:{args.port}/  (Ctrl-C stops it)", flush=True)
    command = server_command(args.port, args.host, args.reload)
    env = server_environment(scenario)
    if os.name == "posix":  # become the server: signals (Ctrl-C, SIGTERM) reach it directly
        sys.stdout.flush()
        os.execve(command[0], command, env)
    try:
        return subprocess.call(command, env=env)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
