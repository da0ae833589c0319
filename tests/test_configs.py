"""Every shipped config loads and validates, the production one included (it cannot run here)."""
from pathlib import Path
import pytest
from modforge_nb.config import load_config, STEP_NOTEBOOKS
from conftest import ROOT

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

def test_the_three_kinds_of_run_ship():
    assert {p.stem for p in CONFIGS} >= {"smoke", "default", "llama31-8b"}

@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates(path):
    from modforge_nb.steps import kind_of
    cfg = load_config(path)
    assert all(kind_of(s, cfg.run.instances) in STEP_NOTEBOOKS for s in cfg.run.steps)
    assert (ROOT / "nbs" / STEP_NOTEBOOKS[cfg.run.steps[0]]).exists()

def test_production_config_points_at_hosted_teachers_without_keys():
    cfg = load_config(ROOT / "configs" / "llama31-8b.yaml")
    assert cfg.model.source == "hf" and cfg.runtime.device == "cuda"
    assert cfg.teachers and all(t.api_key_env and t.base_url.startswith("https://") for t in cfg.teachers)
    text = (ROOT / "configs" / "llama31-8b.yaml").read_text()
    assert "sk-" not in text  # keys come from environment variables, never from the file

def test_teacher_steps_need_tiers_and_named_tiers_must_exist():
    from modforge_nb.config import ConfigError
    with pytest.raises(ConfigError, match="need teachers"):
        load_config(ROOT / "configs" / "smoke.yaml", ["teachers=[]", "teaching.cascade=[]", "teaching.judge=null"])
    with pytest.raises(ConfigError, match="'tier9'"):
        load_config(ROOT / "configs" / "smoke.yaml", ["teaching.judge=tier9"])
    cfg = load_config(ROOT / "configs" / "default.yaml")
    assert [t.base_url for t in cfg.teachers] == ["local", "local"] and {"1A", "1B", "1C", "2E"} <= set(cfg.run.steps)
    # the offline default's last tier is the reference solver (3x's cascade); 1B/1C/2E ask the model tier only
    assert cfg.teachers[-1].model == "reference-solver" and cfg.teaching.cascade == ["local"] and cfg.teaching.judge == "local"
    assert [cfg.run.instances[s].params["domain"] for s in cfg.run.steps if s in cfg.run.instances] == ["code", "reasoning", "automation"]

# --- ranges: a bad number is refused when the config loads (file or --set), naming the key, the value, the range ---
SMOKE = ROOT / "configs" / "smoke.yaml"
BAD_SETTINGS = [   # (override on the smoke config, what the error says now)
    ("gguf.gate.figures=[humaneval_pass@1]", "a GGUF is scored without HumanEval); 2C can compare: "),
    ("eval.task_limit=-1", "'eval.task_limit': -1 is out of range; allowed: an integer >= 1, or null"),
    ("calibrate.bins=0", "'calibrate.bins': 0 is out of range; allowed: an integer >= 1"),
    ("sft.train.val_share=2", "'sft.train.val_share': 2 is out of range; allowed: a number in (0, 1)"),
    ("eval.batch_size=0", "'eval.batch_size': 0 is out of range; allowed: an integer >= 1"),
    ("teaching.judge_bar=99", "'teaching.judge_bar': 99 is out of range; allowed: an integer in [1, 10]"),
    ("teaching.temperature=-0.5", "'teaching.temperature': -0.5 is out of range; allowed: a number in [0, 2]"),
    ("runtime.seed=-1", "'runtime.seed': -1 is out of range; allowed: an integer in [0, 4294967295]"),
    ("runtime.threads=-2", "'runtime.threads': -2 is out of range; allowed: an integer >= 0"),
    ("eval.humaneval.timeout_s=0", "'eval.humaneval.timeout_s': 0 is out of range; allowed: a number > 0"),
    ("distill.train.learning_rate=0", "'distill.train.learning_rate': 0 is out of range; allowed: a number in (0, 1]"),
    ("recovery.worst_share=1.5", "'recovery.worst_share': 1.5 is out of range; allowed: a number in (0, 1]"),
    ("calibrate.fit_share=1", "'calibrate.fit_share': 1 is out of range; allowed: a number in (0, 1)"),
    ("pack.level=23", "'pack.level': 23 is out of range; allowed: an integer in [1, 22]"),
    ("vocab.coverage_levels=[0.99, 1.5]", "'vocab.coverage_levels.1': 1.5 is out of range; allowed: a number in (0, 1]"),
    ("vocab.target_coverage=0", "'vocab.target_coverage': 0 is out of range; allowed: a number in (0, 1]"),
    ("trim.fallback_coverages=[2]", "'trim.fallback_coverages.0': 2 is out of range; allowed: a number in (0, 1]"),
    ("prune.levels=[0.5, 1.2]", "'prune.levels.1': 1.2 is not a sparsity in (0, 1) or '2:4'"),
    ("prune.gate.max_drop=-0.1", "'prune.gate.max_drop': -0.1 is out of range; allowed: a number >= 0"),
    ("failures.k_min=1", "'failures.k_min': 1 is out of range; allowed: an integer >= 2"),
    ("failures.k_min=6", "failures.k_min = 6 is above failures.k_max = 4"),
    ("teachers=[{name: local, base_url: local, model: m, price_in_per_m: -1}]",
     "'teachers.0.price_in_per_m': -1 is out of range; allowed: a number >= 0"),
    ("calibrate.tasks=[arith_gen]", "'arith_gen' is not a multiple-choice task"),
    ("eval.tasks=[arith_mc, nope]", "'eval.tasks.1': unknown local task 'nope'"),
    # gate figures no evaluation of the run makes (the smoke run scores arith_mc and arith_gen; HumanEval on the base only)
    ("trim.gate.figures=[bpb, py_output_mc_acc]", "trim.gate.figures: 'py_output_mc_acc' is not made for the base model, 0B's candidates (no evaluation makes it"),
    ("prune.gate.figures=[humaneval_pass@1]", "'humaneval_pass@1' is not made for 0B's model, 1A's model, 2A's candidates (eval.compressed_humaneval_limit=0 runs no HumanEval)"),
    ("sft.gate.figures=[ppl, arith_mc_n]", "sft.gate.figures: 'arith_mc_n'"),   # a count, not a quality figure
    ("distill.gate.figures=[]", "'distill.gate.figures': List should have at least 1 item"),
]

# the GGUF mix: a start type every tensor can take, known tensor types, patterns that compile, a deliverable that is made
BAD_GGUF = [
    (["gguf.mix={base: Q4_K_M}"], "gguf.mix.base='Q4_K_M' must be one tensor type for every tensor"),
    (["gguf.mix={moves: [{tensors: ffn_down, type: Q3_Z}]}"], "gguf.mix tensor type 'Q3_Z' unknown"),
    (["gguf.mix={moves: [{tensors: 'ffn_(down', type: Q4_K}]}"], "is no regular expression"),
    (["gguf.mix=null", "gguf.deliver=mix"], "gguf.deliver='mix' is not made by this config"),
]

@pytest.mark.parametrize("settings,message", BAD_GGUF, ids=[s[-1] for s, _ in BAD_GGUF])
def test_bad_gguf_mix_is_refused_at_load(settings, message):
    from modforge_nb.config import ConfigError
    with pytest.raises(ConfigError) as e: load_config(SMOKE, settings)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)

def test_a_per_domain_step_needs_a_known_domain():
    "3x runs once per domain: a bare `3x` or an unknown domain is refused when the config loads, naming the fix."
    from modforge_nb.config import ConfigError
    with pytest.raises(ConfigError, match=r"step '3x' \(3x\) runs once per domain: give an instance naming it"):
        load_config(SMOKE, ["run.steps=[baseline, 3x]"])
    from modforge_nb.engine import check_domains
    with pytest.raises(ConfigError, match=r"unknown domain 'poetry'.*known domains: automation, code"):   # before any step runs
        check_domains(load_config(SMOKE, ["run.steps=[baseline, {id: p, kind: 3x, params: {domain: poetry}}]"]))

def test_qlora_on_cpu_is_refused_at_load():
    "QLoRA needs bitsandbytes' CUDA kernels: refused when the config loads, not 20 minutes later when 1A trains."
    from modforge_nb.config import ConfigError
    with pytest.raises(ConfigError, match=r"sft.train.method = qlora needs runtime.device=cuda.*use method: lora on CPU"):
        load_config(SMOKE, ["sft.train.method=qlora"])
    assert load_config(SMOKE, ["sft.train.method=qlora", "runtime.device=cuda"]).sft.train.method == "qlora"

@pytest.mark.parametrize("setting,message", BAD_SETTINGS, ids=[s for s, _ in BAD_SETTINGS])
def test_bad_setting_is_refused_at_load(setting, message):
    from modforge_nb.config import ConfigError
    with pytest.raises(ConfigError) as e: load_config(SMOKE, [setting])
    assert message in str(e.value), str(e.value)
    assert str(e.value).count("\n") == 1, str(e.value)     # the header line and one line for the one problem

def test_every_problem_is_one_line():
    from modforge_nb.config import ConfigError
    with pytest.raises(ConfigError) as e: load_config(SMOKE, ["eval.task_limit=-1", "calibrate.bins=0", "teaching.judge_bar=0"])
    lines = str(e.value).splitlines()[1:]
    assert len(lines) == 3 and all(l.startswith("  bad value for '") for l in lines), lines

def test_gate_figures_follow_the_evaluation_config():
    cfg = load_config(SMOKE, ["prune.gate.figures=[ppl, humaneval_pass@1]", "eval.compressed_humaneval_limit=2"])
    assert cfg.prune.gate.figures == ["ppl", "humaneval_pass@1"]
    cfg = load_config(SMOKE, ["eval.tasks=[arith_mc, py_output_mc]", "trim.gate.figures=[bpb, py_output_mc_acc_norm]"])
    assert cfg.trim.gate.figures == ["bpb", "py_output_mc_acc_norm"]

def test_bad_setting_through_the_cli_is_refused_before_any_work(tmp_path):
    from conftest import modforge
    p = modforge("run", SMOKE, "--set", "eval.task_limit=-1", runs_dir=tmp_path, check=2)
    assert "'eval.task_limit': -1 is out of range; allowed: an integer >= 1, or null" in p.stderr, p.stderr
    assert not any(tmp_path.iterdir())                      # no run folder was made

# --- provenance: the seed and the device are part of every step's fingerprint; threads and the kernel are not ---
def test_seed_and_device_change_every_fingerprint_threads_do_not():
    from modforge_nb.engine import fingerprints
    base = fingerprints(load_config(SMOKE))
    assert set(base) == set(load_config(SMOKE).run.steps)
    for change in ("runtime.seed=7", "runtime.device=cuda"):
        other = fingerprints(load_config(SMOKE, [change]))
        assert all(other[s] != base[s] for s in base), change
    assert fingerprints(load_config(SMOKE, ["runtime.threads=2", "runtime.kernel=other", "runtime.cache_dir=elsewhere"])) == base

def test_old_configs_with_runtime_seed_still_load():
    assert load_config(SMOKE, ["runtime.seed=7"]).runtime.seed == 7

def test_a_new_seed_reruns_the_step_and_the_run_records_it(runs_dir):
    "End to end on one cheap step (0A, ~15 s): before, `--set runtime.seed=7` skipped it and config.yaml then said 7."
    import yaml
    from conftest import modforge
    one = ("--set", "run.steps=[0A]", "--run-id", "s", "--no-progress")
    modforge("run", SMOKE, *one, runs_dir=runs_dir, check=0)
    p = modforge("run", SMOKE, *one, "--set", "runtime.seed=7", runs_dir=runs_dir, check=0)
    assert "0A: re-running (its inputs changed)" in p.stderr, p.stderr
    assert yaml.safe_load((runs_dir / "s" / "config.yaml").read_text())["runtime"]["seed"] == 7
    again = modforge("run", SMOKE, *one, "--set", "runtime.seed=7", "--set", "runtime.threads=2", runs_dir=runs_dir, check=0)
    assert "0A: done, unchanged (skipped)" in again.stderr, again.stderr
