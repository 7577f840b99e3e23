"""Checkpoints hold only data: crafted, damaged or stale ones are refused; resume is exact."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from relocsim import checkpoint, decision_panel, event_log, statefile
from relocsim.checkpoint import CheckpointError
from relocsim.cli import main
from relocsim.model import RelocationModel

TINY = "synthetic:n_firms=1500,n_zones=10,n_regions=2,seed=3"
SEED = 4
REQUEST = {"scenario": TINY, "seed": SEED, "set": [], "version": "test"}


def _tables(model: RelocationModel) -> dict[str, pd.DataFrame]:
    return model.results().tables()


def _assert_same(expected: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> None:
    for name, table in expected.items():
        pd.testing.assert_frame_equal(got[name], table, obj=name)


@pytest.fixture(scope="module")
def whole_run() -> dict[str, pd.DataFrame]:
    """The tiny scenario over ten years without interruption."""
    model = RelocationModel(TINY, seed=SEED)
    model.run(10)
    return _tables(model)


def test_resume_after_a_stop_at_every_year_gives_identical_tables(tmp_path, whole_run):
    model = RelocationModel(TINY, seed=SEED)
    for year in range(11):  # a checkpoint after every year of one run, as if killed there
        if year == 5:
            assert len(model.agents) > 0  # later checkpoints hold a model whose agents were made
        checkpoint.save(model, REQUEST, tmp_path / str(year))
        if year < 10:
            model.step()
    del model
    for stopped in range(11):
        resumed = checkpoint.load(REQUEST, tmp_path / str(stopped))
        assert resumed.year == resumed.scenario.start_year + stopped
        assert len(resumed.agents) == len(resumed.firms.live_rows())
        resumed.run(10 - stopped)
        _assert_same(whole_run, _tables(resumed))
    assert not list(tmp_path.glob("*/.*tmp*")), "a temporary file was left behind"


class _RunsCode:
    """An object whose unpickling runs code: it creates the file named in ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _crafted(kind: str, folder: Path, marker: Path) -> None:
    evil = _RunsCode(marker)
    if kind == "pickle named checkpoint.pkl":
        (folder / "checkpoint.pkl").write_bytes(pickle.dumps({"request": {}, "model": evil}))
    elif kind == "pickle named checkpoint.npz":
        (folder / "checkpoint.npz").write_bytes(pickle.dumps(evil))
    elif kind == "object arrays inside the archive":
        with open(folder / "checkpoint.npz", "wb") as handle:
            np.savez(handle, header=np.array([evil], dtype=object), tree=np.array([evil]))
    elif kind == "pickled object array as a bare .npy":
        with open(folder / "checkpoint.npz", "wb") as handle:
            np.save(handle, np.array([evil], dtype=object), allow_pickle=True)


@pytest.mark.parametrize(
    "kind",
    [
        "pickle named checkpoint.pkl",
        "pickle named checkpoint.npz",
        "object arrays inside the archive",
        "pickled object array as a bare .npy",
    ],
)
def test_a_checkpoint_crafted_to_run_code_is_refused_without_running_it(tmp_path, kind, capsys):
    out, marker = tmp_path / "out", tmp_path / "pwned"
    out.mkdir()
    _crafted(kind, out, marker)
    code = main(["run", "--scenario", TINY, "--years", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert not marker.exists(), "the crafted checkpoint ran code"
    assert err.startswith("relocsim: error:") and "checkpoint" in err and "--fresh" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "content",
    [pickle.dumps([1, 2]), pickle.dumps({}), b"", b"PK\x03\x04 truncated", "folder"],
    ids=["list", "empty dict", "empty file", "truncated zip", "folder"],
)
def test_a_checkpoint_of_the_wrong_type_is_refused(tmp_path, content):
    path = tmp_path / checkpoint.CHECKPOINT
    if content == "folder":
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match="checkpoint.npz: .*--fresh"):
        checkpoint.load(REQUEST, tmp_path)


def test_eight_overwritten_bytes_never_resume_with_other_tables(tmp_path, whole_run):
    model = RelocationModel(TINY, seed=SEED)
    model.run(5)
    intact = checkpoint.save(model, REQUEST, tmp_path / "intact").read_bytes()
    rng = np.random.default_rng(0)
    refused = 0
    for trial, offset in enumerate(rng.integers(0, len(intact) - 8, 12)):
        folder = tmp_path / f"damaged{trial}"
        folder.mkdir()
        damaged = bytearray(intact)
        damaged[offset : offset + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
        if damaged == intact:
            continue
        (folder / checkpoint.CHECKPOINT).write_bytes(bytes(damaged))
        try:
            resumed = checkpoint.load(REQUEST, folder)
        except CheckpointError as exc:
            assert "checkpoint.npz" in str(exc) and "\n" not in str(exc)
            refused += 1
            continue
        resumed.run(5)  # damage outside the content (zip padding) must change nothing
        _assert_same(whole_run, _tables(resumed))
    assert refused >= 8
    # every byte of the array data is covered by the checksum
    header, archive = statefile.read_header(tmp_path / "intact" / checkpoint.CHECKPOINT)
    archive.close()
    middle = len(intact) // 2
    damaged = bytearray(intact)
    damaged[middle : middle + 8] = bytes(b ^ 0xFF for b in intact[middle : middle + 8])
    (tmp_path / "middle").mkdir()
    (tmp_path / "middle" / checkpoint.CHECKPOINT).write_bytes(bytes(damaged))
    with pytest.raises(CheckpointError, match="damaged"):
        checkpoint.load(REQUEST, tmp_path / "middle")


def test_a_stale_checkpoint_is_refused(tmp_path, monkeypatch):
    model = RelocationModel(TINY, seed=SEED)
    model.run(2)
    checkpoint.save(model, REQUEST, tmp_path)
    with pytest.raises(CheckpointError, match="another run"):
        checkpoint.load({**REQUEST, "seed": SEED + 1}, tmp_path)
    with pytest.raises(CheckpointError, match="stale: written by relocsim 'test'"):
        checkpoint.load({**REQUEST, "version": "0.0.0"}, tmp_path)
    monkeypatch.setattr(checkpoint, "code_hash", lambda: "0" * 64)
    with pytest.raises(CheckpointError, match="stale: .*code 000000000000"):
        checkpoint.load(REQUEST, tmp_path)


def test_a_checkpoint_of_an_edited_scenario_is_refused(tmp_path, capsys):
    from relocsim.scenarios import load_scenario

    scenario = tmp_path / "scenario"
    shutil.copytree(load_scenario("brussels-metro").source_dir, scenario)
    out = tmp_path / "out"
    request = {"scenario": str(scenario), "seed": 0, "set": [], "version": "x"}
    model = RelocationModel(str(scenario), seed=0)
    checkpoint.save(model, request, out)
    toml = scenario / "scenario.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    checkpoint.load(request, out)  # a comment changes nothing
    text = toml.read_text(encoding="utf-8")
    assert re.search(r"(?m)^price_elasticity = ", text)
    text = re.sub(r"(?m)^price_elasticity = [0-9.]+", "price_elasticity = 0.123", text)
    toml.write_text(text, encoding="utf-8")
    with pytest.raises(CheckpointError, match="stale: the scenario"):
        checkpoint.load(request, out)


def _relocsim(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "relocsim.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_real_run_killed_mid_way_resumes_identically(tmp_path, sig):
    spec = "synthetic:n_firms=20000,n_zones=20,n_regions=3,seed=1"
    argv = ["run", "--scenario", spec, "--years", "8", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "whole"), "--checkpoint-every", "0"]) == 0
    out = tmp_path / "killed"
    run = _relocsim(*argv, "--out", str(out), "--checkpoint-every", "1")
    deadline = time.monotonic() + 60
    while not (out / checkpoint.CHECKPOINT).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    run.send_signal(sig)
    code = run.wait(60)
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL), run.stderr.read()
    assert main([*argv, "--out", str(out), "--checkpoint-every", "1"]) == 0
    tables = ("yearly", "zones", "accounts", "events", "flows", "sizes")
    for name in (*tables, "decisions", "alternatives"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(out / f"{name}.parquet"),
            pd.read_parquet(tmp_path / "whole" / f"{name}.parquet"),
            obj=name,
        )
    assert not (out / checkpoint.CHECKPOINT).exists()
    assert not (out / decision_panel.SPILL_FOLDER).exists()
    assert not list(out.glob(".*tmp*"))


def test_a_run_writes_the_decision_panel_a_year_at_a_time(tmp_path, capsys):
    """At a million firms the panel grows by about 0.4 GB a year: ``relocsim run`` moves its rows
    to parts in its --out (at the latest with each checkpoint). Its files are those of a panel
    held in memory, also when the run was killed, its folder moved, and the run resumed there."""
    spec = "synthetic:n_firms=20000,n_zones=20,n_regions=3,seed=1"
    model = RelocationModel(spec, seed=0)
    decision_panel.attach(model)
    model.run(8)
    held = tmp_path / "held"
    model.decision_panel.write(held)
    model.results().events.to_parquet(held / "events.parquet", index=False)
    argv = ["run", "--scenario", spec, "--years", "8", "--no-progress"]
    killed = tmp_path / "killed"
    run = _relocsim(*argv, "--out", str(killed), "--checkpoint-every", "1")
    deadline = time.monotonic() + 60
    while not (killed / checkpoint.CHECKPOINT).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait(60)
    spills = (decision_panel.SPILL_FOLDER, event_log.SPILL_FOLDER)
    assert all((killed / spill).is_dir() for spill in spills), "moved out before the checkpoint"
    moved = tmp_path / "moved"
    killed.rename(moved)
    assert main([*argv, "--out", str(moved)]) == 0
    assert "resuming from the checkpoint" in capsys.readouterr().out
    assert not any((moved / spill).exists() for spill in spills)
    for name in ("decisions.parquet", "alternatives.parquet", "events.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(moved / name), pd.read_parquet(held / name))


def test_panel_parts_by_size_give_the_files_of_a_panel_held_in_memory(tmp_path):
    spec = "synthetic:n_firms=3000,n_zones=12,n_regions=3,seed=2"
    written = {}
    for label, spill in (("held", None), ("parts", tmp_path / "parts")):
        model = RelocationModel(spec, seed=5)
        decision_panel.attach(model, spill=spill)
        for _ in range(5):
            model.step()
            model.decision_panel.flush(min_rows=7_000)  # a part every two or three years
        if spill is not None:
            assert 1 <= len(list(spill.glob("decisions-*.parquet"))) < 5
            assert model.decision_panel._decisions, "the last years are still held"
        written[label] = model.decision_panel.write(tmp_path / label)
    for held, parts in zip(written["held"], written["parts"], strict=True):
        assert pq.read_table(held).equals(pq.read_table(parts))
        assert pq.read_schema(held).equals(pq.read_schema(parts), check_metadata=True)


def test_event_log_parts_by_size_give_the_file_of_a_log_held_in_memory(tmp_path):
    """The event log of a long run at a million firms would peak its memory at the end: ``relocsim
    run`` moves it to parts as it goes and writes ``events.parquet`` from them."""
    spec = "synthetic:n_firms=3000,n_zones=12,n_regions=3,seed=2"
    model = RelocationModel(spec, seed=5)
    log = model.recorder.event_log
    log.spill = tmp_path / "parts"
    for _ in range(5):
        model.step()
        log.flush(min_rows=3_000)  # a part every two years
    assert 1 <= len(list(log.spill.glob("events-*.parquet"))) < 5
    assert log.held_rows, "the last year is still held"
    spilled = model.results().events
    log.write(tmp_path / "parts.parquet")
    log.flush()
    state = statefile.dumps({}, model.recorder)
    held = RelocationModel(spec, seed=5)
    held.run(5)
    assert len(state) < len(statefile.dumps({}, held.recorder)) / 2, "no event in the state"
    held.results().events.to_parquet(tmp_path / "held.parquet", index=False)
    pd.testing.assert_frame_equal(spilled, held.results().events)
    written, expected = (pq.read_table(tmp_path / f) for f in ("parts.parquet", "held.parquet"))
    assert written.equals(expected)
    assert written.schema.equals(expected.schema, check_metadata=True)
    assert len(written) == len(spilled) > 3_000


def test_checkpoints_are_due_by_time_or_by_years():
    schedule = checkpoint.Schedule(years=0, minutes=2.0, last=100.0)
    assert not schedule.due(5, now=100.0 + 119.0)  # a short run saves none
    assert schedule.due(1, now=100.0 + 120.0)
    schedule.saved(now=300.0)
    assert not schedule.due(2, now=301.0)
    by_years = checkpoint.Schedule(years=3, minutes=0.0, last=0.0)
    assert [y for y in range(1, 10) if by_years.due(y, now=1e9)] == [3, 6, 9]
    assert not checkpoint.Schedule(years=0, minutes=0.0, last=0.0).due(10, now=1e9)


@pytest.mark.parametrize("minutes", ["-1", "nan", "inf"])
def test_a_bad_checkpoint_interval_is_refused_before_the_run(tmp_path, capsys, minutes):
    out = tmp_path / "never"
    argv = ["run", "--years", "1", "--out", str(out), "--checkpoint-minutes", minutes]
    assert main(argv) == 2
    assert "--checkpoint-minutes" in capsys.readouterr().err
    assert not out.exists()


def test_text_state_is_stored_by_its_distinct_values(tmp_path):
    """A decision panel's pool names were stored as fixed-width text, 120 bytes a cell."""
    names = np.array(["bxl_mixed_enterprise.mixed", "fl_noordrand.park"] * 50_000, dtype=object)
    path = tmp_path / "state.npz"
    path.write_bytes(statefile.dumps({}, {"pools": names}))
    assert path.stat().st_size < 1_000_000
    header, archive = statefile.read_header(path)
    back = statefile.read_state(header, archive)["pools"]
    assert back.dtype == object and (back == names).all()


def test_the_state_file_keeps_shared_data_and_rebuilds_only_relocsim_classes(tmp_path):
    import json

    from relocsim.firms import FirmTable

    table = FirmTable()
    frame = pd.DataFrame({"region": ["a", "b"], "jobs": [1, 2]})
    frame["kind"] = pd.Categorical(["x", "y"])
    state = {
        "one": table,
        "same": table,
        "rng": np.random.default_rng(5),
        "frames": [frame],
        (1, 2): {"nan": float("nan"), "big": 2**70, "scalar": np.float32(0.5)},
    }
    path = tmp_path / "state.npz"
    path.write_bytes(statefile.dumps({"what": "test"}, state))
    header, archive = statefile.read_header(path)
    back = statefile.read_state(header, archive)
    assert back["one"] is back["same"] and isinstance(back["one"], FirmTable)
    assert back["rng"].random() == np.random.default_rng(5).random()
    pd.testing.assert_frame_equal(back["frames"][0], frame)
    assert back[(1, 2)]["big"] == 2**70 and np.isnan(back[(1, 2)]["nan"])
    assert back[(1, 2)]["scalar"].dtype == np.float32

    with pytest.raises(statefile.StateFileError, match=r"state.hook: a builtins.function"):
        statefile.dumps({}, {"hook": lambda: None})

    # a tree naming a class outside relocsim (with a valid checksum) is refused, not built
    tree = json.dumps({"$t": "object", "id": 0, "type": "subprocess:Popen", "fields": {}})
    evil = tmp_path / "evil.npz"
    with open(evil, "wb") as handle:
        header = {
            "format": statefile.FORMAT,
            "format_version": statefile.FORMAT_VERSION,
            "sha256": statefile._checksum(tree.encode(), []),
        }
        np.savez(
            handle,
            header=np.frombuffer(json.dumps(header).encode(), np.uint8),
            tree=np.frombuffer(tree.encode(), np.uint8),
        )
    header, archive = statefile.read_header(evil)
    with pytest.raises(statefile.StateFileError, match="not a loaded relocsim class"):
        statefile.read_state(header, archive)
