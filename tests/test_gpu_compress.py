"""The GPU path of 2B: AWQ and GPTQ W4A16 on SmolLM2 on CUDA through modforge_nb.compress (AWQ cannot run on CPU-only torch).
Skipped without a GPU (CI); run on a GPU machine with `pytest -m cuda tests/test_gpu_compress.py`."""
import time, pytest, torch
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CI has none)")]

@pytest.mark.parametrize("method", ["awq", "gptq"])
def test_w4a16_on_cuda(method, tmp_path):
    from modforge_nb.config import ModelSection
    from modforge_nb.models import materialize_model, load_model, checkpoint_stats
    weight_bytes = lambda p: checkpoint_stats(p)["weight_bytes"]
    from modforge_nb.compress import calibration_dataset, quantize_recipe, check_group_size, run_oneshot, save_checkpoint, load_compressed
    from modforge_nb.evaluate import perplexity, pydoc_topics
    path = materialize_model(ModelSection(), ROOT / "cache")
    model, tok = load_model(path, "cuda")
    ref = perplexity(model, tok, pydoc_topics("heldout"), 4096, 512, progress=False)["ppl"]
    check_group_size(model, 64)
    data = calibration_dataset(tok, 64, 512)
    t0 = time.monotonic(); run_oneshot(model, tok, quantize_recipe(method, 64), data, 512); secs = time.monotonic() - t0
    save_checkpoint(model, tok, tmp_path / method, {"method": method})
    q, qtok = load_compressed(tmp_path / method, "cuda")
    ppl = perplexity(q, qtok, pydoc_topics("heldout"), 4096, 512, progress=False)["ppl"]
    print(f"{method}: {secs:.0f} s on {torch.cuda.get_device_name()}, {weight_bytes(tmp_path / method) / 1e6:.1f} MB, ppl {ref:.3f} -> {ppl:.3f}")
    assert weight_bytes(tmp_path / method) < 0.4 * weight_bytes(path) and ppl < ref * 1.5
