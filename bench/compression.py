"""Compression benchmark: the frontier table of a run, plus CPU decode speed of each of its GGUF files.

    .venv/bin/python bench/compression.py [RUN] [--threads N] [--tokens N] [--repeats N]

RUN is a run id in runs/ or a run folder (default: runs/default, what `make run` makes). Quality figures come from
the run's metrics.json (measured by the steps); speed is measured here, now, on this machine, through llama.cpp
(the same build the pipeline uses). Not a test: it prints a table and asserts nothing about speed.
"""
from __future__ import annotations
import argparse, json, statistics, sys, time
from pathlib import Path

def decode_rates(llm, tokens: int, repeats: int) -> dict:
    "Prompt and decode tokens/s of greedy generation on a loaded `Llama` as it is (its adapters applied), median of `repeats`."
    prompt = llm.tokenize(b"def quicksort(items):\n    \"\"\"Sort a list of numbers and return it.\"\"\"\n", add_bos=False)
    pp, tg = [], []
    for _ in range(repeats):
        llm.reset(); t0 = time.perf_counter()
        llm.eval(prompt); t1 = time.perf_counter()
        n = 0
        for tok in llm.generate(prompt, temp=0.0, reset=False):
            n += 1
            if n >= tokens: break
        t2 = time.perf_counter()
        pp.append(len(prompt) / (t1 - t0)); tg.append(n / (t2 - t1))
    return {"prompt_tok_s": statistics.median(pp), "decode_tok_s": statistics.median(tg)}

def decode_speed(gguf: Path, threads: int, tokens: int, repeats: int) -> dict:
    "Prompt and decode tokens/s of greedy generation of the file `gguf` (median of `repeats`), no logits kept."
    from llama_cpp import Llama
    llm = Llama(model_path=str(gguf), n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    try: return decode_rates(llm, tokens, repeats)
    finally: llm.close()

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", default="default")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1: what a shared 2-core machine sustains)")
    ap.add_argument("--tokens", type=int, default=64, help="tokens generated per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="0: no speed measured (the quality table alone, from metrics.json)")
    ap.add_argument("--kinds", default="", help="comma-separated row kinds to print (default: every row)")
    args = ap.parse_args(argv)
    from modforge_nb.runs import Run, default_runs_dir, metric_rows
    from modforge_nb.report import machine
    p = Path(args.run); run = Run.open(p if p.is_dir() else default_runs_dir() / args.run)
    rows, m = metric_rows(run), run.manifest()
    ggufs = {name: run.path / a["path"] / "model.gguf" for s in m["steps"].values() for name, a in s.get("artifacts", {}).items()
             if a.get("kind") == "model" and (run.path / a["path"] / "model.gguf").exists()}
    speed = {}
    for name, f in (ggufs.items() if args.repeats > 0 else ()):
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        speed[name] = decode_speed(f, args.threads, args.tokens, args.repeats)
    cols = ["artifact", "kind", "MB", "bits/param", "ppl", "bpb", "arith_mc", "py_output_mc", "arith_gen", "HumanEval", "prompt tok/s", "decode tok/s"]
    def cell(r, c):
        v = {"MB": r.get("bytes", 0) / 1e6, "bits/param": r.get("bits_per_param"), "arith_mc": r.get("arith_mc_acc"),
             "py_output_mc": r.get("py_output_mc_acc"), "arith_gen": r.get("arith_gen_exact_match"), "HumanEval": r.get("humaneval_pass@1"),
             "prompt tok/s": speed.get(r["artifact"], {}).get("prompt_tok_s"), "decode tok/s": speed.get(r["artifact"], {}).get("decode_tok_s")
             }.get(c, r.get(c))
        return "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
    print(f"# Compression frontier of run `{run.id}`\n\nmachine: {machine()}; llama.cpp threads: {args.threads}; "
          + (f"decode: greedy, {args.tokens} tokens, median of {args.repeats}\n" if args.repeats > 0 else "speed not measured (--repeats 0)\n"))
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    kinds = set(filter(None, args.kinds.split(",")))
    for r in rows:
        if kinds and r.get("kind", "base") not in kinds: continue
        print("| " + " | ".join(cell(r, c) for c in cols) + " |")
    return 0

if __name__ == "__main__":
    sys.exit(main())
