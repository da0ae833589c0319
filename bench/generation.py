"""Greedy HumanEval generation on the embedded model: transformers against llama.cpp, one sequence and batched.

    .venv/bin/python bench/generation.py [--problems 64] [--threads 1] [--batch 8] [--out bench/results/generation.md]

Rows: transformers' batched `generate` on the fp32 checkpoint (what HumanEval used before); llama.cpp one sequence
at a time (`Llama.create_completion`, temperature 0) on the F16 export; `batched_decode.BatchedGreedy` (`--batch`
sequences a forward pass) on the F16 export, and on the shipped Q4_1 file. Every row decodes the same chat prompts
with the same stop strings and `max_new_tokens` 256; "same as transformers" counts completions identical to the fp32
model's (F16 keeps them; a quantized file is another model), pass@1 is checked in the sandbox. Not a test: it prints a
table and asserts nothing about speed. Run it on an otherwise idle machine.
"""
from __future__ import annotations
import argparse, tempfile, time
from pathlib import Path

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    import torch
    from llama_cpp import Llama
    from modforge_nb.config import ModelSection
    from modforge_nb.models import materialize_model, load_model, find_package_gguf, set_threads
    from modforge_nb.humaneval import problems, build_prompt, resolve_style, stops, truncate, complete, check
    from modforge_nb.llamacpp import exported_gguf, GGUFModel
    from modforge_nb.runs import project_root
    from modforge_nb.report import machine
    set_threads(args.threads)
    model, tok = load_model(materialize_model(ModelSection(), project_root() / "cache"))
    ps = problems(args.problems); style = resolve_style(tok, "auto"); st = stops(style)
    prompts = [build_prompt(tok, p["prompt"], style) for p in ps]
    rows, ref = [], None
    def row(name, fn):
        nonlocal ref
        t0 = time.perf_counter(); comps = fn(); dt = time.perf_counter() - t0
        ref = ref or comps
        passed = sum(check(p, c)["passed"] for p, c in zip(ps, comps))
        rows.append((name, dt, dt / len(ps), sum(a == b for a, b in zip(comps, ref)), passed))
        print(f"{name}: {dt:.0f} s", flush=True)
    row(f"transformers fp32, batch {args.batch}", lambda: complete(model, tok, prompts, st, 256, args.batch, False, backend="torch"))
    with exported_gguf(model, tok) as f16:
        def one_by_one():
            llm = Llama(model_path=str(f16), n_ctx=1024, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
            try: return [truncate(llm.create_completion(tok.encode(p, add_special_tokens=False), max_tokens=256, temperature=0.0,
                                                        top_k=1, stop=st)["choices"][0]["text"], st) for p in prompts]
            finally: llm.close()
        row("llama.cpp F16, one sequence at a time", one_by_one)
        for name, path in ((f"llama.cpp F16, {args.batch} sequences a pass", f16),
                           (f"llama.cpp shipped Q4_1, {args.batch} sequences a pass", find_package_gguf())):
            gm = GGUFModel(path, n_ctx=1024, threads=args.threads)
            try: row(name, lambda: complete(gm, tok, prompts, st, 256, args.batch, False))
            finally: gm.close()
    head = (f"Machine: {machine()}; torch {torch.__version__}, {args.threads} thread(s); {len(ps)} HumanEval problems (chat prompts), "
            f"greedy, 256 new tokens at most.\nCommand: `.venv/bin/python bench/generation.py --problems {args.problems} "
            f"--threads {args.threads} --batch {args.batch}`\n\n")
    table = "| decoder | seconds | s / problem | same as transformers | pass@1 |\n|---|---|---|---|---|\n" + "".join(
        f"| {n} | {dt:.0f} | {per:.2f} | {same}/{len(ps)} | {p}/{len(ps)} |\n" for n, dt, per, same, p in rows)
    print("\n" + head + table)
    if args.out: args.out.write_text("# HumanEval generation: transformers and llama.cpp\n\n" + head + table)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
