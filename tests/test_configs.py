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
    cfg = load_config(path)
    assert all(s in STEP_NOTEBOOKS for s in cfg.run.steps)
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
        load_config(ROOT / "configs" / "smoke.yaml", ["teachers=[]"])
    with pytest.raises(ConfigError, match="'tier9'"):
        load_config(ROOT / "configs" / "smoke.yaml", ["teaching.judge=tier9"])
    cfg = load_config(ROOT / "configs" / "default.yaml")
    assert [t.base_url for t in cfg.teachers] == ["local"] and {"1A", "1B", "1C", "2E"} <= set(cfg.run.steps)
