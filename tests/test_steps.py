"""The step registry, end to end in a temporary copy of the checkout: a new step kind is its notebook and one
registry record; two instances of it run with their own parameters, each skipped on re-run and re-run alone
when only its parameters change; an unknown parameter is refused before any kernel starts; editing a library
module re-runs the steps whose notebooks import it, and only those."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, yaml
from conftest import ROOT, env, manifest

ECHO = {"cells": [
    {"cell_type": "code", "execution_count": None, "id": "p", "metadata": {"tags": ["parameters"]}, "outputs": [],
     "source": ['run_dir: str = ""\n', 'step: str = "9Z"\n', 'message: str = "hello"   # what to echo']},
    {"cell_type": "code", "execution_count": None, "id": "i", "metadata": {}, "outputs": [],
     "source": ["from modforge_nb.step import StepContext"]},
    {"cell_type": "code", "execution_count": None, "id": "r", "metadata": {}, "outputs": [],
     "source": ["ctx = StepContext.open(run_dir, step)\n", "assert ctx.params.get('message', message) == message\n",
                "ctx.note(f'echo: {message}')\n", "ctx.finish(message=message, kind=ctx.kind)"]}],
    "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}

@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    "A copy of the checkout with one new step kind, 9Z: its notebook and one record in the registry, nothing else."
    dst = tmp_path_factory.mktemp("co") / "checkout"
    shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "cache", "_docs", "__pycache__", "*.pyc"))
    (dst / "nbs" / "phase1" / "9Z_echo.ipynb").write_text(json.dumps(ECHO))
    steps = dst / "modforge_nb" / "steps.py"; src = steps.read_text()
    assert src.count("\n]}") == 1
    steps.write_text(src.replace("\n]}", '\n    StepKind("9Z", "phase1/9Z_echo.ipynb", ("model",), "echo a parameter (a test kind)"),\n]}'))
    return dst

def _config(checkout, b="b", extra=None):
    cfg = yaml.safe_load((checkout / "configs" / "smoke.yaml").read_text())
    cfg["run"]["steps"] = [{"id": "echo-a", "kind": "9Z", "params": {"message": "a"}},
                           {"id": "echo-b", "kind": "9Z", "params": {"message": b, **(extra or {})}}]
    p = checkout / "configs" / "echo.yaml"; p.write_text(yaml.safe_dump(cfg)); return p

def _run(checkout, cfg, check=0):
    e = dict(env(), PYTHONPATH=str(checkout))          # the copy's package, in the CLI and in the step kernels
    p = subprocess.run([sys.executable, "-c", "from modforge_nb.cli import main; raise SystemExit(main())", "--runs-dir",
                        str(checkout / "runs"), "run", str(cfg), "--run-id", "e", "--no-progress"],
                       capture_output=True, text=True, env=e, cwd=checkout, timeout=600)
    assert p.returncode == check, p.stderr[-3000:]
    return p.stderr

def test_a_new_kind_and_its_instances(checkout):
    err = _run(checkout, _config(checkout))
    assert "echo-a: running" in err and "{'message': 'a'}" in err and "echo-b: running" in err, err
    m = manifest(checkout / "runs" / "e")["steps"]
    for sid, msg in (("echo-a", "a"), ("echo-b", "b")):
        s = m[sid]
        assert s["status"] == "done" and s["kind"] == "9Z" and s["params"] == {"message": msg}, s
        assert s["metrics"] == {"message": msg, "kind": "9Z"} and (checkout / "runs" / "e" / "notebooks" / f"{sid}.ipynb").exists()
        assert (checkout / "runs" / "e" / sid).is_dir()                      # each instance its own step folder
    again = _run(checkout, _config(checkout))
    assert again.count("done, unchanged (skipped)") == 2, again
    changed = _run(checkout, _config(checkout, b="bee"))                 # only echo-b's parameters changed
    assert "echo-a: done, unchanged (skipped)" in changed and "echo-b: re-running (its inputs changed)" in changed, changed
    assert manifest(checkout / "runs" / "e")["steps"]["echo-b"]["metrics"]["message"] == "bee"

def test_unknown_parameter_refused_before_a_kernel(checkout):
    err = _run(checkout, _config(checkout, extra={"volume": 11}), check=2)
    assert "['volume'] not declared in its `parameters` cell" in err and "running" not in err, err

def test_a_library_edit_reruns_only_its_importers(checkout):
    cfg = _config(checkout, b="bee"); _run(checkout, cfg)
    pack = checkout / "modforge_nb" / "pack.py"; pack.write_text(pack.read_text() + "\n# an edit the echo kind never imports\n")
    assert _run(checkout, cfg).count("done, unchanged (skipped)") == 2
    step = checkout / "modforge_nb" / "step.py"; step.write_text(step.read_text() + "\n# an edit of the step API it imports\n")
    assert _run(checkout, cfg).count("re-running (its inputs changed)") == 2
