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
