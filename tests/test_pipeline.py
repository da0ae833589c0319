"""The smoke config end to end through papermill: complete, skip, kill and resume, fail and recover, bad run folders."""
import fcntl, json, os, shutil, signal, subprocess, time
from pathlib import Path
import pytest
from conftest import modforge, manifest, SMOKE, MODFORGE, ROOT, env

# the run engine's behaviour on the first two steps (test_compression.py runs the whole smoke pipeline)
FOUNDATION = ("--set", "run.steps=[baseline, 0A]")

@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    "One run with only the baseline done, shared: each test that needs one works on its own copy."
    runs = tmp_path_factory.mktemp("base")
    modforge("run", SMOKE, *FOUNDATION, "--run-id", "b", "--steps", "baseline", "--no-progress", runs_dir=runs, check=0)
    return runs / "b"

def _copy(run, runs_dir, name):
    shutil.copytree(run, runs_dir / name, symlinks=True); return runs_dir / name

def _statuses(run):
    return {k: v["status"] for k, v in manifest(run)["steps"].items()}

def test_smoke_end_to_end_then_skip(runs_dir):
    p = modforge("run", SMOKE, *FOUNDATION, "--run-id", "s", "--no-progress", runs_dir=runs_dir, check=0)
    run = runs_dir / "s"
    assert _statuses(run) == {"baseline": "done", "0A": "done"}
    m = manifest(run)
    for step in ("baseline", "0A"):
        assert (run / m["steps"][step]["notebook"]).exists()            # the executed notebook is kept
        for a in m["steps"][step]["artifacts"].values(): assert a["bytes"] > 0 and len(a["sha256"]) == 64
    rows = json.loads((run / "metrics.json").read_text())["rows"]
    assert rows[0]["artifact"] == "base" and rows[0]["bytes"] > 0 and rows[0]["ppl"] > 1
    assert (run / "report" / "quality_vs_size.png").stat().st_size > 10_000
    assert "| base |" in (run / "report" / "report.md").read_text()
    assert (run / "config.yaml").exists()
    again = modforge("run", SMOKE, *FOUNDATION, "--run-id", "s", "--no-progress", runs_dir=runs_dir, check=0)
    assert again.stderr.count("(skipped)") == 2, again.stderr
    assert manifest(run)["steps"]["baseline"]["started"] == m["steps"]["baseline"]["started"]
    st = modforge("status", "s", "--verify", runs_dir=runs_dir, check=0).stdout
    assert "MISMATCH" not in st and st.count("verified") >= 4
    # changing only runtime settings re-runs nothing; changing what a step computes re-runs it and what follows
    assert modforge("run", SMOKE, *FOUNDATION, "--run-id", "s", "--set", "runtime.threads=2", runs_dir=runs_dir, check=0).stderr.count("(skipped)") == 2
    ch = modforge("run", SMOKE, *FOUNDATION, "--run-id", "s", "--set", "vocab.max_chars=30000", "--no-progress", runs_dir=runs_dir, check=0)
    assert "baseline: done, unchanged (skipped)" in ch.stderr and "0A: re-running (its inputs changed)" in ch.stderr
    assert (run / "config.prev.yaml").exists()
    (run / "0A" / "coverage.json").write_text("{}")                     # an artifact altered after the fact
    bad = modforge("status", "s", "--verify", runs_dir=runs_dir, check=1).stdout
    assert "MISMATCH" in bad and "0A/coverage" in bad and "--from 0A" in bad and "current model" in bad
    ev = modforge("run", SMOKE, *FOUNDATION, "--run-id", "s", "--set", "eval.task_limit=4", "--no-progress", runs_dir=runs_dir, check=0)
    assert "baseline: re-running (its inputs changed)" in ev.stderr and "0A: re-running" in ev.stderr  # downstream follows

def test_killed_mid_step_resumes_at_that_step(runs_dir):
    run = runs_dir / "k"
    proc = subprocess.Popen([str(MODFORGE), "--runs-dir", str(runs_dir), "run", str(SMOKE), *FOUNDATION, "--run-id", "k", "--no-progress"],
                            cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:                 # wait until step 0A has started (baseline done)
            try: st = _statuses(run)
            except (FileNotFoundError, json.JSONDecodeError): st = {}
            if st.get("0A") == "running": break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        else: raise AssertionError("step 0A never started")
        time.sleep(1.0)                               # let the 0A kernel start working
    finally:
        os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    m = manifest(run)
    assert m["steps"]["baseline"]["status"] == "done" and m["steps"]["0A"]["status"] == "running"
    assert "artifacts" not in m["steps"]["0A"]        # nothing of the killed step counts as complete
    baseline_started = m["steps"]["baseline"]["started"]
    p = modforge("run", SMOKE, *FOUNDATION, "--run-id", "k", "--no-progress", runs_dir=runs_dir, check=0)
    assert "baseline: done, unchanged (skipped)" in p.stderr and "0A: resuming" in p.stderr, p.stderr
    m = manifest(run)
    assert _statuses(run) == {"baseline": "done", "0A": "done"} and m["steps"]["baseline"]["started"] == baseline_started
    assert modforge("status", "k", "--verify", runs_dir=runs_dir, check=0).stdout.count("MISMATCH") == 0

def test_failed_step_stops_the_run_and_a_fix_resumes_it(runs_dir):
    p = modforge("run", SMOKE, *FOUNDATION, "--run-id", "f", "--set", "eval.perplexity.seq_len=0", "--no-progress", runs_dir=runs_dir)
    assert p.returncode == 1 and "step baseline failed" in p.stderr and "ValueError" in p.stderr, p.stderr
    m = manifest(runs_dir / "f")
    assert m["steps"]["baseline"]["status"] == "failed" and "0A" not in m["steps"]
    assert (runs_dir / "f" / m["steps"]["baseline"]["notebook"]).exists()   # the partial notebook, with the traceback
    modforge("run", SMOKE, *FOUNDATION, "--run-id", "f", "--no-progress", runs_dir=runs_dir, check=0)
    assert _statuses(runs_dir / "f") == {"baseline": "done", "0A": "done"}

def test_corrupt_or_missing_manifest_is_refused_and_nothing_is_lost(baseline_run, runs_dir):
    run = _copy(baseline_run, runs_dir, "c")
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    good = (run / "manifest.json").read_text()
    (run / "manifest.json").write_text(good[: len(good) // 2])           # a torn write by some other tool
    for args in (("run", SMOKE, *FOUNDATION, "--run-id", "c"), ("status", "c")):
        p = modforge(*args, runs_dir=runs_dir, check=2)
        assert "corrupt manifest" in p.stderr and "manifest.json.bak" in p.stderr, p.stderr
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert {k: v for k, v in after.items() if k.name != "manifest.json"} == {k: v for k, v in before.items() if k.name != "manifest.json"}
    (run / "manifest.json").unlink()
    assert "no manifest.json" in modforge("run", SMOKE, *FOUNDATION, "--run-id", "c", runs_dir=runs_dir, check=2).stderr
    assert (run / "baseline" / "model").is_dir()                         # artifacts untouched
    (run / "manifest.json").write_text((run / "manifest.json.bak").read_text())   # the recovery the message names
    p = modforge("run", SMOKE, *FOUNDATION, "--run-id", "c", "--steps", "baseline", runs_dir=runs_dir, check=0)
    assert "(skipped)" in p.stderr

def test_a_run_in_use_is_refused(baseline_run, runs_dir):
    _copy(baseline_run, runs_dir, "l")
    with open(runs_dir / "l" / ".lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        p = modforge("run", SMOKE, *FOUNDATION, "--run-id", "l", runs_dir=runs_dir, check=2)
    assert "another `modforge run` is working on" in p.stderr
