"""Training through `accelerate launch` on 2 CPU processes (gloo): the same recipe as one process, the same quality within
noise; a job that fails says so and leaves nothing that looks trained. (The LoRA path is tested in nbs/14b_launch.ipynb;
3x runs through it in test_compression's end-to-end modifier test: smoke-modifier.yaml trains on 2 processes.)"""
import json
import pytest
from conftest import ROOT

def _fixture():
    from modforge_nb.config import ModelSection
    from modforge_nb.models import materialize_model, load_model, set_threads
    set_threads(1)
    return load_model(materialize_model(ModelSection(source="fixture"), ROOT / "cache"))

ROWS = [{"messages": [{"role": "user", "content": f"Repeat {i % 6}."}, {"role": "assistant", "content": f"{i % 6} {i % 6}"}]} for i in range(40)]

def test_full_finetune_on_two_processes_matches_one(tmp_path):
    "method=full, 12 steps of 4 rows: 1 process in this one, then 2 launched; both learn, final validation losses within 5%."
    from modforge_nb.config import TrainSpec
    from modforge_nb.finetune import sft_train, split_rows
    tr, va = split_rows(ROWS, 0.2)
    spec = dict(method="full", max_steps=12, eval_every=4, patience=5, batch_size=4, max_length=32, learning_rate=2e-3)
    m1, info1 = sft_train(*_fixture(), tr, va, TrainSpec(**spec), tmp_path / "one")
    m, t = _fixture()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    m2, info2 = sft_train(m, t, tr, va, TrainSpec(**spec, processes=2), tmp_path / "two")
    assert (info1["processes"], info2["processes"]) == (1, 2) and info2["steps"] == info1["steps"] == 12
    # the same rows a step: the tokens the Trainer counted (gathered over both processes) agree within the rows' lengths' spread
    assert abs(info2["tokens"] - info1["tokens"]) < 0.1 * info1["tokens"], (info1["tokens"], info2["tokens"])
    for i in (info1, info2): assert i["best_eval_loss"] < i["first_eval_loss"], i["history"]
    assert abs(info1["best_eval_loss"] - info2["best_eval_loss"]) < 0.05 * info1["best_eval_loss"], (info1["best_eval_loss"], info2["best_eval_loss"])
    changed = [k for k, v in m2.state_dict().items() if not (v == before[k]).all()]
    assert m2 is m and len(changed) > len(before) // 2     # the job's weights were loaded into the caller's model
    assert not (tmp_path / "two" / "job").exists() and (tmp_path / "two" / "launch.log").exists()

def test_a_failing_job_raises_with_its_log_and_leaves_no_output(tmp_path, monkeypatch):
    from modforge_nb.config import TrainSpec
    from modforge_nb.finetune import sft_train
    bad = [{"messages": ROWS[0]["messages"]}, {"text": "plain"}] * 4      # mixed formats: the job's dataset refuses them
    with pytest.raises(RuntimeError, match="failed \\(exit [1-9]"):
        sft_train(*_fixture(), bad, [], TrainSpec(max_steps=2, batch_size=2, processes=2), tmp_path / "bad")
    assert "must all be chat" in (tmp_path / "bad" / "launch.log").read_text()
    # a job that dies after the Trainer saved the adapter, before process 0's promise (info.json): nothing of it is kept
    monkeypatch.setenv("MODFORGE_LAUNCH_FAIL_AFTER_SAVE", "1")
    with pytest.raises(RuntimeError, match="failed \\(exit [1-9]"):
        sft_train(*_fixture(), ROWS[:8], [], TrainSpec(max_steps=2, batch_size=2, processes=2), tmp_path / "late")
    log = (tmp_path / "late" / "launch.log").read_text()
    assert "job: saved" in log and "MODFORGE_LAUNCH_FAIL_AFTER_SAVE is set" in log, log[-2000:]   # the adapter was there, then removed
    assert sorted(p.name for p in (tmp_path / "late").iterdir()) == ["launch.log"]

def test_recipes_that_cannot_launch_are_refused_by_name(tmp_path):
    from modforge_nb.config import TrainSpec, load_config
    with pytest.raises(Exception, match="strategy = fsdp is refused"):     # when the config is read, before any step runs
        TrainSpec(processes=2, strategy="fsdp")
    with pytest.raises(Exception, match="strategy = fsdp is refused"):
        load_config(ROOT / "configs/smoke-modifier.yaml", overrides=["modifier.train.strategy=fsdp"])
    with pytest.raises(Exception, match="processes"):
        TrainSpec(processes=0)
