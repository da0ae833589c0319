"""The training path (1A, 1C, 2E all call modforge_nb.finetune.sft_train) on CUDA: trl SFTTrainer + peft LoRA on SmolLM2
with the curated set, validation loss and checked accuracy before/after. Skipped without a GPU (CI); on a GPU machine:
`pytest -m cuda tests/test_gpu_finetune.py -s`."""
import time, pytest, torch
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CI has none)")]

def test_sft_lora_on_cuda(tmp_path):
    from modforge_nb.config import ModelSection, TrainSpec
    from modforge_nb.models import materialize_model, load_model
    from modforge_nb.sftdata import load_sft
    from modforge_nb.finetune import split_rows, sft_train, checked_accuracy
    model, tok = load_model(materialize_model(ModelSection(), ROOT / "cache"), "cuda")
    train, val = split_rows(load_sft(), 0.1)
    before, _ = checked_accuracy(model, tok, val, batch_size=30)
    spec = TrainSpec(max_steps=300, eval_every=50, patience=2, batch_size=16, max_length=256, learning_rate=3e-4)
    t0 = time.monotonic()
    model, info = sft_train(model, tok, train, val, spec, tmp_path / "work", device="cuda")
    secs = time.monotonic() - t0
    after, _ = checked_accuracy(model, tok, val, batch_size=30)
    print(f"\n{torch.cuda.get_device_name()}: {info['steps']} steps in {secs:.0f} s ({info['steps'] / secs:.2f} steps/s, batch 16), "
          f"validation loss {info['first_eval_loss']:.3f} -> {info['best_eval_loss']:.3f} (best at step {info['best_step']}, "
          f"early stop: {info['stopped_early']})\nchecked accuracy before {before}\nafter {after}")
    assert info["best_eval_loss"] < info["first_eval_loss"] and after["all"] >= before["all"]
