"""Domain modifiers on one served GGUF base through llama.cpp: how long a switch takes, and decode speed with one.

    .venv/bin/python bench/modifier_switch.py BASE.gguf NAME=LORA [NAME=LORA ...] [--base-hf DIR] [--threads N]
        [--tokens N] [--repeats N] [--switches N]

LORA is a GGUF LoRA file, or a PEFT adapter folder (converted first with llama.cpp's convert_lora_to_gguf.py; then
`--base-hf` names the HF checkpoint whose config.json it was trained on). The base is loaded once
(`modforge_nb.lora_gguf.ModifiedGGUF`); a switch is `use(name)`: llama_set_adapters_lora and a KV-cache clear,
timed over `--switches` switches cycling base -> each modifier -> base. Decode tokens/s: greedy generation of
`--tokens` tokens after a 19-token prompt, median of `--repeats`, with each modifier active and with none; the first
token after a switch (the prompt re-evaluated: the cache was cleared) is in the prompt column. Not a test: it
prints a table and asserts nothing about speed.
"""
from __future__ import annotations
import argparse, statistics, sys, tempfile, time
from pathlib import Path

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("modifiers", nargs="+", help="NAME=FILE.gguf or NAME=PEFT_ADAPTER_DIR")
    ap.add_argument("--base-hf", type=Path, help="the HF checkpoint a PEFT adapter was trained on (its config.json)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--switches", type=int, default=200)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from compression import decode_rates as decode   # the same measurement as the frontier's decode column
    from modforge_nb.lora_gguf import ModifiedGGUF, lora_to_gguf
    from modforge_nb.report import machine
    work, files = Path(tempfile.mkdtemp()), {}
    for spec in args.modifiers:
        name, _, path = spec.partition("=")
        if not path: ap.error(f"{spec!r}: give NAME=PATH")
        p = Path(path)
        if p.is_dir():
            if not args.base_hf: ap.error(f"{p} is a PEFT adapter folder: --base-hf must name the checkpoint it was trained on")
            t0 = time.perf_counter(); p = lora_to_gguf(p, args.base_hf, work / f"{name}.gguf")
            print(f"converted {spec} -> {p.stat().st_size / 1e6:.1f} MB GGUF LoRA in {time.perf_counter() - t0:.1f} s")
        files[name] = p
    t0 = time.perf_counter()
    g = ModifiedGGUF(args.base, files, n_ctx=512, threads=args.threads)
    print(f"Machine: {machine()}; {args.threads} thread(s); base {args.base} ({args.base.stat().st_size / 1e6:.1f} MB) and "
          f"{len(files)} modifier(s) loaded in {time.perf_counter() - t0:.2f} s\n")
    cycle, times = [None, *files], []
    for i in range(args.switches): times.append(g.use(cycle[(i + 1) % len(cycle)]))
    times.sort()
    print(f"switch (use(name): set adapters + clear the KV cache), {len(times)} switches: median {statistics.median(times) * 1e3:.3f} ms, "
          f"p99 {times[int(0.99 * (len(times) - 1))] * 1e3:.3f} ms, max {times[-1] * 1e3:.3f} ms")
    # llama.cpp applies adapters lazily: the next decode rebuilds its graph. So also time switch + one-token decode,
    # against the same one-token decode with no switch before it
    one = g.llm.tokenize(b"def", add_bos=False)
    def first_token(switch: bool) -> float:
        out = []
        for i in range(max(2, args.switches // 4)):
            name = cycle[(i + 1) % len(cycle)] if switch else g.active
            t0 = time.perf_counter(); g.use(name)
            if not switch: g.llm.reset()                 # the same cleared cache, without a switch
            g.llm.eval(one); out.append(time.perf_counter() - t0)
        return statistics.median(out)
    sw, same = first_token(True), first_token(False)
    print(f"switch + first one-token decode: median {sw * 1e3:.2f} ms, against {same * 1e3:.2f} ms for that decode with no switch "
          f"(switch cost {max(0.0, sw - same) * 1e3:.2f} ms)\n")
    print("| active | MB of the modifier | prompt tok/s | decode tok/s | decode vs base |\n|---|---:|---:|---:|---:|")
    g.use(None); base = decode(g.llm, args.tokens, args.repeats)
    print(f"| base alone | | {base['prompt_tok_s']:.0f} | {base['decode_tok_s']:.1f} | 100% |")
    for name, f in files.items():
        g.use(name); s = decode(g.llm, args.tokens, args.repeats)
        print(f"| {name} | {f.stat().st_size / 1e6:.1f} | {s['prompt_tok_s']:.0f} | {s['decode_tok_s']:.1f} | "
              f"{s['decode_tok_s'] / base['decode_tok_s']:.0%} |")
    g.close()
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
