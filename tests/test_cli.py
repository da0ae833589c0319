"""The command line: help, and bad input that must fail fast with a message naming the problem."""
from conftest import modforge, SMOKE

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
