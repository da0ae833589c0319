"""The serving GPU path: `TransformersBackend` (modforge_nb.peft_backend) on CUDA against the same backend on CPU, behind
the real server (`server.make_app`, uvicorn on loopback, the `openai` client), on a model of SmolLM2-135M's shape.

    python bench/gpu_serve.py TOKENIZER_DIR [--tokens 128] [--clients 8] [--requests 8]

The GPU machine of this workplace has no network and no copy of SmolLM2's weights (the embedded GGUF is over what a
call may carry), so the model is SmolLM2-135M's architecture (its config, its tokenizer from TOKENIZER_DIR: a served
GGUF folder's tokenizer files) with seeded random weights, and three seeded random LoRA modifiers (r16 on every
projection). Text is noise; what is measured is what the weights do not change: that CUDA and CPU decode the same
greedy tokens (fp32 both), the per-token speed of a single stream, the modifier switch, and the server under load.
Prints a markdown table. Not a test.
"""
from __future__ import annotations
import argparse, json, shutil, socket, statistics, sys, tempfile, threading, time
from pathlib import Path

def build(tok_dir: Path, out: Path, seed: int = 0) -> tuple[Path, dict]:
    "A SmolLM2-135M-shaped checkpoint with random weights at `out/model`, and three random PEFT adapters."
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from peft import LoraConfig, get_peft_model
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                      num_key_value_heads=3, max_position_embeddings=2048, rope_theta=100000.0, tie_word_embeddings=True,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg); model.save_pretrained(out / "model"); tok.save_pretrained(out / "model")
    mods = {}
    for i, name in enumerate(("code", "reasoning", "automation")):
        torch.manual_seed(seed + 1 + i)
        pm = get_peft_model(LlamaForCausalLM.from_pretrained(out / "model"), LoraConfig(
            r=16, lora_alpha=32, init_lora_weights=False,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
        pm.save_pretrained(out / name); mods[name] = out / name
    return out / "model", mods

MSG = [{"role": "user", "content": "Write a long story about a robot who learns to paint."}]

def single_stream(backend, modifier, tokens: int, repeats: int = 3) -> float:
    "Median tokens/s of one greedy stream (prompt excluded: first piece to last)."
    rates = []
    for _ in range(repeats):
        it, first, n = backend.stream(MSG, modifier, tokens, 0.0, (), 0), None, 0
        for _piece in it:
            n += 1; first = first or time.perf_counter()
        rates.append((n - 1) / (time.perf_counter() - first))
    return statistics.median(rates)

def serve_load(backend, served, clients: int, requests: int, tokens: int) -> dict:
    import openai
    from modforge_nb.server import ServerThread, make_app
    app = make_app(served, backend, ui=False)
    lat, toks, errors = [], [], []
    with ServerThread(app) as st:
        def loop(c):
            cl = openai.OpenAI(base_url=st.url + "/v1", api_key="none", max_retries=0, timeout=600)
            for i in range(requests):
                try:
                    t0 = time.perf_counter()
                    r = cl.chat.completions.create(model=["code", "reasoning", "automation", served.base_name][(c + i) % 4],
                                                   messages=MSG, max_tokens=tokens, temperature=0)
                    lat.append(time.perf_counter() - t0); toks.append(r.usage.completion_tokens)
                except Exception as e: errors.append(repr(e)[:200])
        t0 = time.perf_counter()
        ts = [threading.Thread(target=loop, args=(c,)) for c in range(clients)]
        for t in ts: t.start()
        for t in ts: t.join()
        wall = time.perf_counter() - t0
    lat.sort()
    return {"errors": len(errors), "p50": lat[len(lat) // 2] if lat else None, "p95": lat[int(0.95 * (len(lat) - 1))] if lat else None,
            "tok_s": sum(toks) / wall, "req_s": len(lat) / wall, "first_error": errors[0] if errors else None}

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tokenizer"); ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--clients", type=int, default=8); ap.add_argument("--requests", type=int, default=8)
    a = ap.parse_args(argv)
    import torch
    from modforge_nb.peft_backend import TransformersBackend
    from modforge_nb.serve_backend import Served
    tmp = Path(tempfile.mkdtemp(prefix="gpu-serve-"))
    ckpt, mods = build(Path(a.tokenizer), tmp)
    lines = ["| measure | CPU | CUDA |", "|---|---:|---:|"]
    out = {}
    for dev in ("cpu", "cuda"):
        t0 = time.perf_counter()
        b = TransformersBackend(ckpt, mods, device=dev, threads=16 if dev == "cpu" else 4, dtype="float32")
        load_s = time.perf_counter() - t0
        greedy = {m: b.generate(MSG, m, 32, 0.0)[0] for m in (None, "code", "reasoning")}
        rates = {m: single_stream(b, m, a.tokens) for m in (None, "reasoning")}
        t0 = time.perf_counter(); [b.generate(MSG, m, 1, 0.0) for m in ("code", "reasoning", "automation", None)]
        switch = (time.perf_counter() - t0) / 4
        served = Served(base=ckpt, base_name="smollm2-shape", modifiers={n: {"phase": 1} for n in mods})
        load = serve_load(b, served, a.clients, a.requests, a.tokens // 2)
        out[dev] = {"load_s": load_s, "greedy": greedy, "rates": rates, "switch": switch, "load": load}
        b.close() if hasattr(b, "close") else None
        del b
        if dev == "cuda": torch.cuda.synchronize()
    same = {str(m): out["cpu"]["greedy"][m] == out["cuda"]["greedy"][m] for m in out["cpu"]["greedy"]}
    c, g = out["cpu"], out["cuda"]
    lines += [f"| load the model + 3 adapters | {c['load_s']:.1f} s | {g['load_s']:.1f} s |",
              f"| decode tok/s, one stream, base | {c['rates'][None]:.1f} | {g['rates'][None]:.1f} |",
              f"| decode tok/s, one stream, a modifier | {c['rates']['reasoning']:.1f} | {g['rates']['reasoning']:.1f} |",
              f"| a 1-token request, switching modifier each time | {c['switch'] * 1000:.0f} ms | {g['switch'] * 1000:.0f} ms |",
              f"| server: {a.clients} clients x {a.requests} requests ({a.tokens // 2} tokens), errors | {c['load']['errors']} | {g['load']['errors']} |",
              f"| server: latency p50 / p95 | {c['load']['p50']:.2f} / {c['load']['p95']:.2f} s | {g['load']['p50']:.2f} / {g['load']['p95']:.2f} s |",
              f"| server: completion tok/s | {c['load']['tok_s']:.1f} | {g['load']['tok_s']:.1f} |",
              f"| greedy 32 tokens identical CPU vs CUDA (base, code, reasoning) | {same} | |"]
    print(f"GPU serving path: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, fp32\n" + "\n".join(lines))
    for d in out:
        if out[d]["load"]["first_error"]: print(d, "error:", out[d]["load"]["first_error"])
    shutil.rmtree(tmp, ignore_errors=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
