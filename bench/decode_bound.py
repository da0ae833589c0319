"""Decode and prompt speed of GGUF files through llama.cpp against the memory-bandwidth bound of this machine.

    .venv/bin/python bench/decode_bound.py FILE.gguf [FILE.gguf ...] [--threads N] [--tokens N] [--repeats N]

Decoding one token of a dense model reads every weight once (the tied embedding included: it is the output
projection), so tokens/s can be at most (read bandwidth) / (bytes of weights). The bandwidth is measured here, now,
with the same number of threads: numpy sums a 1 GiB float32 array per thread (`--threads` arrays, in threads), best
of `--repeats`. The table gives each file's decode tokens/s (median of `--repeats`, greedy, after the prompt) and
that as a share of its bound. Not a test: it prints a table and asserts nothing about speed.
"""
from __future__ import annotations
import argparse, statistics, sys, threading, time
from pathlib import Path
import numpy as np

def read_bandwidth(threads: int = 1, gib: float = 1.0, repeats: int = 3) -> float:
    "Bytes/s that `threads` threads read from memory, each summing its own `gib` GiB array (best of `repeats`)."
    arrays = [np.ones(int(gib * 2**30 / 4), np.float32) for _ in range(threads)]
    best = 0.0
    for _ in range(repeats):
        ts = [threading.Thread(target=np.add.reduce, args=(a,)) for a in arrays]   # numpy releases the GIL in reductions
        t0 = time.perf_counter()
        for t in ts: t.start()
        for t in ts: t.join()
        best = max(best, sum(a.nbytes for a in arrays) / (time.perf_counter() - t0))
    return best

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from compression import decode_speed
    from modforge_nb.report import machine
    bw = read_bandwidth(args.threads, repeats=args.repeats)
    print(f"Machine: {machine()}; {args.threads} thread(s); measured read bandwidth {bw / 1e9:.2f} GB/s "
          f"(numpy sum of a 1 GiB float32 array per thread, best of {args.repeats}).\n")
    print("| file | MB | bound tok/s | prompt tok/s | decode tok/s | decode / bound |\n|---|---:|---:|---:|---:|---:|")
    for f in args.files:
        b = f.stat().st_size
        s = decode_speed(f, args.threads, args.tokens, args.repeats)
        bound = bw / b
        print(f"| {f.parent.name}/{f.name} | {b / 1e6:.1f} | {bound:.0f} | {s['prompt_tok_s']:.0f} | {s['decode_tok_s']:.1f} | "
              f"{s['decode_tok_s'] / bound:.0%} |")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
