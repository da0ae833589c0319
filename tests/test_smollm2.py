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

def test_trimmed_smollm2_through_llama_cpp(smol, tmp_path):
    "0B's trim then 2C's GGUF export on the real model: llama.cpp tokenizes like our tokenizer and agrees with transformers."
    from modforge_nb.vocab import always_kept, token_counts
    from modforge_nb.trim import trim_tokenizer, trim_model
    from modforge_nb.llamacpp import hf_to_gguf, quantize_gguf, GGUFModel
    from modforge_nb.agreement import agreement, agreement_prompts
    model, tok = smol
    text = pydoc_topics("analysis")[:200_000]
    counts = token_counts(tok, [text])
    new_tok, old_ids = trim_tokenizer(tok, sorted(set(counts.nonzero()[0].tolist()) | set(always_kept(tok))))
    import copy
    trimmed = copy.deepcopy(model); trim_model(trimmed, old_ids, new_tok)
    trimmed.save_pretrained(tmp_path / "hf"); new_tok.save_pretrained(tmp_path / "hf")
    f16 = hf_to_gguf(tmp_path / "hf", tmp_path / "f16.gguf", "f16", pre_tokenizer="smollm")
    q8 = quantize_gguf(f16, tmp_path / "q8.gguf", "Q8_0")
    gm = GGUFModel(q8, n_ctx=1024)
    for s in ["Ünïcödé ✓ 日本語 🙂 never seen", "def f(x):\n    return x ** 2  # 12345", "<|im_start|>user\nhi<|im_end|>"]:
        assert gm.tokenize(s) == new_tok.encode(s, add_special_tokens=False), s
    hf = perplexity(trimmed, new_tok, pydoc_topics("heldout"), 1024, 512, progress=False)
    gg = perplexity(gm, new_tok, pydoc_topics("heldout"), 1024, 512, progress=False)
    assert abs(gg["ppl"] - hf["ppl"]) / hf["ppl"] < 0.03, (hf, gg)
    a = agreement(trimmed, new_tok, {"q8": gm}, agreement_prompts(8), cont_tokens=8, progress=False)["q8"]
    assert a["top1"] > 0.9 and a["kl"] < 0.05 and a["tokenizer_match"] == 1.0, a
    gm.close()
