"""Shared helpers: run the `modforge` console script of this venv on a temporary runs folder."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "configs" / "smoke.yaml"
MODFORGE = Path(sys.executable).parent / "modforge"

def env():
    e = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return e

def modforge(*args, runs_dir=None, check=None, timeout=600):
    "Run the CLI; return CompletedProcess (stdout, stderr as text)."
    cmd = [str(MODFORGE)] + (["--runs-dir", str(runs_dir)] if runs_dir else []) + [str(a) for a in args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=ROOT, timeout=timeout)
    if check is not None and p.returncode != check:
        raise AssertionError(f"exit {p.returncode} (wanted {check}) for {cmd}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr[-4000:]}")
    return p

def manifest(run_path):
    return json.loads((Path(run_path) / "manifest.json").read_text())

@pytest.fixture
def runs_dir(tmp_path):
    d = tmp_path / "runs"; d.mkdir(); return d

def hand_run(tmp: Path, served, extra: dict[str, str] | None = None) -> Path:
    """A run folder whose manifest serves the tiny system (`serve_backend.tiny_served`): 2C promoted the base folder (its Q8_0
    beside it), step `reasoning` (3x) built the modifier. `extra`: {path in the run: text} written before the manifest's digests."""
    import shutil
    from modforge_nb.config import load_config
    from modforge_nb.fsutil import artifact_digest
    from modforge_nb.runs import Run
    cfg = load_config(SMOKE, ["run.steps=[2C, {id: reasoning, kind: 3x, params: {domain: reasoning}}]"])
    run = Run.create(tmp / "tinyrun", cfg)
    shutil.copytree(served.base, run.path / "2C" / "gguf"); shutil.copytree(served.modes["turbo"], run.path / "2C" / "gguf-q8_0")
    mod = run.path / "reasoning" / "modifier-reasoning"; mod.mkdir(parents=True)
    shutil.copy(served.modifiers["reasoning"]["gguf"], mod / "reasoning.gguf"); (mod / "card.json").write_text('{"phase": 1}')
    for rel, text in (extra or {}).items(): (run.path / rel).parent.mkdir(parents=True, exist_ok=True); (run.path / rel).write_text(text)
    art = lambda p: dict(zip(("bytes", "sha256"), artifact_digest(run.path / p)), path=p)
    base = art("2C/gguf")
    steps = {"2C": {"status": "done", "artifacts": {"gguf": base, "gguf-q8_0": art("2C/gguf-q8_0")}, "promotes": "gguf"},
             "reasoning": {"status": "done", "kind": "3x", "params": {"domain": "reasoning"},
                           "artifacts": {"modifier-reasoning": art("reasoning/modifier-reasoning")},
                           "inputs": {"model": {"step": "2C", "artifact": "gguf", "sha256": base["sha256"]}}}}
    run.update(lambda m: m["steps"].update(steps))
    return run.path
