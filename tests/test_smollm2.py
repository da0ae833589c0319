"""The embedded default model, SmolLM2-135M-Instruct: converted from its GGUF, it answers and stops where it should."""
import pytest, torch
from modforge_nb.config import ModelSection
from modforge_nb.models import materialize_model, load_model, set_threads
from modforge_nb.evaluate import perplexity, pydoc_topics
from conftest import ROOT

pytestmark = pytest.mark.slow

@pytest.fixture(scope="module")
def smol():
    set_threads(0)
    return load_model(materialize_model(ModelSection(), ROOT / "cache"))

def test_chat_answer_and_end_of_turn(smol):
    model, tok = smol
    assert (tok.eos_token, tok.eos_token_id, tok.pad_token_id) == ("<|im_end|>", 2, 2)
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**enc, max_new_tokens=40, do_sample=False)[0, enc["input_ids"].shape[1]:]
    assert "Paris" in tok.decode(out, skip_special_tokens=True)
    assert out[-1].item() == tok.eos_token_id and len(out) < 40   # stops at <|im_end|>, not at max_new_tokens

def test_heldout_perplexity_is_that_of_a_working_model(smol):
    model, tok = smol
    r = perplexity(model, tok, pydoc_topics("heldout"), max_tokens=1024, seq_len=512, progress=False)
    # measured 15.1 on the first 2048 tokens (llama.cpp on the GGUF itself: 15.2); a broken conversion gives hundreds
    assert 5 < r["ppl"] < 30, r

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU (CI has none)")
def test_same_perplexity_on_gpu(smol):
    model, tok = smol
    cpu = perplexity(model, tok, pydoc_topics("heldout"), 512, 256, progress=False)["ppl"]
    gpu = perplexity(model.to("cuda"), tok, pydoc_topics("heldout"), 512, 256, progress=False)["ppl"]
    model.to("cpu")
    assert abs(cpu - gpu) / cpu < 1e-2
