"""What a vocabulary trim costs on held-out text, for several `trim.keep_first` values: bits per byte and fallback rate.

    .venv/bin/python bench/trim_sweep.py runs/default [--keep-first 0,16384,24576,32768,40960] [--coverage 0.999]

The run's base model (its baseline) trimmed by 0B's own functions to 0A's top-K tokens of the run
(`0A/token_frequencies.csv`, K for `--coverage`) plus the tokenizer's first N ids, then scored on the first 4,096
held-out documentation tokens as the suite does (`evaluate.perplexity`). Prints a table; asserts nothing.
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--keep-first", default="0,16384,24576,32768,40960")
    ap.add_argument("--coverage", type=float, default=0.999)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from modforge_nb.runs import Run, lineage
    from modforge_nb.models import load_model
    from modforge_nb.vocab import always_kept
    from modforge_nb.trim import trim_tokenizer, trim_model, keep_ids_for, k_for_coverage, fallback
    from modforge_nb.evaluate import pydoc_topics, perplexity
    run = Run.open(args.run)
    base, freq, text = lineage(run)[0]["path"], run.path / "0A" / "token_frequencies.csv", pydoc_topics("heldout")
    model, tok = load_model(base)
    ref = perplexity(model, tok, text, 4096, 512, progress=False)
    keep, K = always_kept(tok), k_for_coverage(freq, args.coverage)
    print(f"base {base}: vocabulary {len(tok):,}, bpb {ref['bpb']:.4f}; 0A's K for {args.coverage:.2%} coverage: {K:,}\n")
    print("| keep_first | vocabulary | fallback rate | tokens | bpb | bpb vs untrimmed |\n|---:|---:|---:|---:|---:|---:|")
    for kf in [int(x) for x in args.keep_first.split(",") if x]:
        m, _ = load_model(base)
        new, old = trim_tokenizer(tok, keep_ids_for(freq, K, keep, kf)); trim_model(m, old, new)
        fb = fallback(tok, new, text, set(keep), set(always_kept(new)))
        r = perplexity(m, new, text, 4096, 512, progress=False)
        print(f"| {kf:,} | {len(new):,} | {fb['fallback_rate']:.2%} | {fb['token_increase']:+.2%} | {r['bpb']:.4f} | {r['bpb'] / ref['bpb'] - 1:+.1%} |")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
