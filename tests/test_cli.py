"""The command line: help, and bad input that must fail fast with a message naming the problem."""
import json, os, signal, subprocess, time
from conftest import modforge, manifest, SMOKE, MODFORGE, ROOT, env

def test_help_lists_commands():
    p = modforge("--help", check=0)
    for word in ("run", "status", "report", "list", "examples:"): assert word in p.stdout

def test_unknown_key_is_an_error_naming_it(runs_dir):
    p = modforge("run", SMOKE, "--set", "not_a_key=1", runs_dir=runs_dir)
    assert p.returncode != 0 and "not_a_key" in p.stderr, p.stderr
    assert not any(runs_dir.iterdir()), "a rejected config must not create a run"

def test_misspelled_nested_key_suggests_the_right_one(runs_dir):
    p = modforge("run", SMOKE, "--set", "eval.humaneval.limt=3", runs_dir=runs_dir, check=2)
    assert "eval.humaneval.limt" in p.stderr and "did you mean 'limit'" in p.stderr

def test_unreadable_configs(tmp_path, runs_dir):
    bad = tmp_path / "bad.yaml"; bad.write_text("run: {name: x\n  steps: [")
    assert "not valid YAML" in modforge("run", bad, runs_dir=runs_dir, check=2).stderr
    assert "config file not found" in modforge("run", tmp_path / "absent.yaml", runs_dir=runs_dir, check=2).stderr
    assert "is a folder" in modforge("run", tmp_path, runs_dir=runs_dir, check=2).stderr
    empty = tmp_path / "empty.yaml"; empty.write_text("")
    assert "is empty" in modforge("run", empty, runs_dir=runs_dir, check=2).stderr

def test_missing_model_file_fails_before_any_work(runs_dir):
    p = modforge("run", SMOKE, "--set", "model.source=gguf_file", "--set", "model.path=/nonexistent/model.gguf",
                 runs_dir=runs_dir, check=2)
    assert "model file not found: /nonexistent/model.gguf" in p.stderr
    assert not any(runs_dir.iterdir())

def test_unknown_step_and_bad_override_syntax(runs_dir):
    assert "not in run.steps" in modforge("run", SMOKE, "--steps", "2Z", runs_dir=runs_dir, check=2).stderr
    assert "KEY=VALUE" in modforge("run", SMOKE, "--set", "eval", runs_dir=runs_dir, check=2).stderr

# --- hostile input: each gives one clear line (no traceback), exits non-zero, and changes nothing ---

def _no_traceback(p):
    assert "Traceback" not in p.stderr + p.stdout, p.stderr

def _hand_made_run(runs_dir, run_id, steps):
    "A run folder of the smoke config whose manifest holds `steps` (made through the library, as the engine would)."
    from modforge_nb.config import load_config
    from modforge_nb.runs import Run
    run = Run.create(runs_dir / run_id, load_config(SMOKE))
    run.update(lambda m: m["steps"].update(steps))   # a second write: manifest.json.bak exists, as in a real run
    return run

def test_report_renders_without_sized_rows(runs_dir):
    "Only 0A run (it records no artifact with a size): the run succeeds and its report says so."
    modforge("run", SMOKE, "--steps", "0A", "--run-id", "r", "--no-progress", runs_dir=runs_dir, check=0)
    md = (runs_dir / "r" / "report" / "report.md").read_text()
    assert "no sized artifacts yet" in md and "| 0A | done |" in md and (runs_dir / "r" / "report" / "quality_vs_size.png").exists()
    assert "report.md" in modforge("report", "r", runs_dir=runs_dir, check=0).stdout   # and again, by itself

def _pack(tmp_path):
    from modforge_nb.pack import pack_file
    src = tmp_path / "w.bin"; src.write_bytes(bytes(range(256)) * 400)
    info = pack_file(src, tmp_path / "p", level=3)
    return tmp_path / "p" / "w.bin.zst", info

def test_unpack_never_overwrites_by_accident(tmp_path):
    packed, info = _pack(tmp_path)
    digest = lambda q: __import__("hashlib").sha256(q.read_bytes()).hexdigest()
    pack_files = {q: digest(q) for q in packed.parent.iterdir()}
    out = tmp_path / "out.bin"; out.write_text("precious")
    p = modforge("unpack", packed, "-o", out, check=1); _no_traceback(p)
    assert f"{out} exists; pass --force" in p.stderr and out.read_text() == "precious"
    assert "restored" in modforge("unpack", packed, "-o", out, "--force", check=0).stdout and digest(out) == info["sha256"]
    (tmp_path / "link.zst").symlink_to(packed); os.link(packed, tmp_path / "hard.zst")
    for own in (packed, packed.with_name("w.bin.pack.json"), tmp_path / "p" / ".." / "p" / "w.bin.zst", tmp_path / "link.zst", tmp_path / "hard.zst"):
        p = modforge("unpack", packed, "-o", own, "--force", check=1); _no_traceback(p)
        assert "part of the pack" in p.stderr, p.stderr
    assert {q: digest(q) for q in packed.parent.iterdir()} == pack_files      # the pack is untouched
    assert "is a folder" in modforge("unpack", packed, "-o", tmp_path, check=1).stderr
    assert not [q for q in tmp_path.rglob("*") if "partial" in q.name]        # no temporary file left behind

def test_unpack_names_a_missing_pack_and_a_corrupt_record(tmp_path):
    packed, info = _pack(tmp_path)
    absent = tmp_path / "p" / "absent.bin.zst"
    p = modforge("unpack", absent, check=1); _no_traceback(p)
    assert f"packed file not found: {absent}" in p.stderr and "pack_file" not in p.stderr
    meta = packed.with_name("w.bin.pack.json")
    for bad in ("{ torn", "[]", '{"bytes": 3}'):
        meta.write_text(bad)
        p = modforge("unpack", packed, check=1); _no_traceback(p)
        assert f"corrupt pack record {meta}" in p.stderr and "To recover" in p.stderr and "--from 2D" in p.stderr, p.stderr
    meta.unlink()
    assert f"its record {meta} is missing" in modforge("unpack", packed, check=1).stderr

def test_run_ids_are_plain_names(tmp_path, runs_dir):
    for bad in ("../x", "a/b", "..", "/tmp/modforge-x"):
        p = modforge("run", SMOKE, "--run-id", bad, runs_dir=runs_dir, check=2); _no_traceback(p)
        assert f"invalid run id {bad!r}" in p.stderr and "letters, digits" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    for cmd in ("status", "report"):
        p = modforge(cmd, "../x", runs_dir=runs_dir, check=2); _no_traceback(p)
        assert "invalid run id '../x'" in p.stderr
    p = modforge("run", SMOKE, "--set", "run.name=../evil", runs_dir=runs_dir, check=2); _no_traceback(p)
    assert "run.name '../evil'" in p.stderr
    assert sorted(q.name for q in tmp_path.iterdir()) == ["runs"] and not any(runs_dir.iterdir())   # nothing created

def test_malformed_manifest_gets_the_torn_manifest_message(runs_dir):
    run = _hand_made_run(runs_dir, "m", {})
    for shape in ([], {"steps": 3}, {"format": 1, "steps": {"0A": "done"}}, {"format": 1, "steps": {"0A": {"status": "done", "rows": [3]}}}):
        run.manifest_path.write_text(json.dumps(shape))
        for args in (("status", "m"), ("report", "m"), ("run", SMOKE, "--run-id", "m")):
            p = modforge(*args, runs_dir=runs_dir, check=2); _no_traceback(p)
            assert f"corrupt manifest {run.manifest_path}" in p.stderr and "manifest.json.bak" in p.stderr, (shape, args, p.stderr)
        assert json.loads(run.manifest_path.read_text()) == shape            # refused, not rewritten

def test_a_dead_runner_shows_as_interrupted(runs_dir):
    gone = subprocess.Popen(["true"]); gone.wait()
    _hand_made_run(runs_dir, "d", {"baseline": {"status": "running", "started": "2025-01-01T00:00:00+00:00", "pid": gone.pid}})
    st = modforge("status", "d", runs_dir=runs_dir, check=0).stdout
    assert "interrupted" in st and f"pid {gone.pid}" in st and "resume" in st, st
    assert "baseline:interrupted" in modforge("list", runs_dir=runs_dir, check=0).stdout

def test_killed_run_shows_as_interrupted(runs_dir):
    "A real `modforge run`, killed (-9) while its step runs: status says interrupted, not running forever."
    run = runs_dir / "k"
    proc = subprocess.Popen([str(MODFORGE), "--runs-dir", str(runs_dir), "run", str(SMOKE), "--steps", "baseline", "--run-id", "k",
                             "--no-progress"], cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            try: s = manifest(run)["steps"].get("baseline", {})
            except (FileNotFoundError, json.JSONDecodeError): s = {}
            if s.get("status") == "running": break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        else: raise AssertionError("step baseline never started")
        from modforge_nb.runs import step_state
        assert step_state(s) == "running"                                  # alive: running, not interrupted
    finally:
        os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    s = manifest(run)["steps"]["baseline"]
    assert s["status"] == "running" and s["pid"] == proc.pid and s.get("pid_started") and s.get("host")
    st = modforge("status", "k", runs_dir=runs_dir, check=0).stdout
    assert "interrupted" in st and f"pid {proc.pid}" in st, st
