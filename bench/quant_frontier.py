"""Quantization frontier of the embedded model: every llama.cpp preset of it (with and without an importance matrix),
the shipped Q4_1 file, and the per-tensor mix 2C's search finds — each scored on the held-out docs through llama.cpp.

    .venv/bin/python bench/quant_frontier.py [--config configs/default.yaml] [--set KEY=VALUE ...] [--threads N]
        [--trim-keep-first N] [--out bench/results/quant_frontier.json]

It runs what step 2C runs on the untouched model (`modforge_nb.gguf_export`: the same export, importance matrix,
presets and search; the config's `gguf` and `eval.perplexity` sections), scoring perplexity and bits per byte only
(not the tasks), so the whole frontier takes minutes, not 2C's half hour. Not a test: it prints a table (markdown) and
writes the rows as JSON; nothing in it is typed in by hand.
"""
from __future__ import annotations
import argparse, json, platform, shutil, sys, tempfile, time
from pathlib import Path

def plot(info: dict, out: Path) -> Path:
    "The frontier figure of `info`'s rows (the report's `frontier_figure`): llama.cpp's presets of the untouched model grey."
    from modforge_nb.frontier import frontier_figure
    from modforge_nb.fsutil import atomic_write_png
    trimmed = bool(info.get("trim_keep_first"))
    def kind(a):
        if a == "gguf-mix": return "mix"
        if a == "gguf-f16": return "trim" if trimmed else "base"
        return "alternative" if a.startswith(("shipped", "gguf-", "untouched-")) and not (trimmed and a.startswith("gguf-")) else "pipeline"
    rows = [{**r, "kind": kind(r["artifact"])} for r in info["rows"]]
    what = f", vocabulary trimmed to the first {info['trim_keep_first']:,} ids" + (" + 0A's corpus" if info.get("trim_seen") else "") if trimmed else ""
    fig = frontier_figure(rows, highlight="gguf-mix", title=f"SmolLM2-135M: bits per byte (held-out) against size{what}")
    return atomic_write_png(out, fig)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/default.yaml")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="config override, as `modforge run --set`")
    ap.add_argument("--out", default="bench/results/quant_frontier.json")
    ap.add_argument("--trim-keep-first", type=int, default=0, metavar="N",
                    help="also export a vocabulary trim to the tokenizer's first N ids (plus bytes and specials) and search its mix; "
                         "compare it by bits per byte (its tokens differ)")
    ap.add_argument("--trim-seen", action="store_true", help="with --trim-keep-first: also keep every token seen in 0A's corpus (vocab section)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (every GGUF made) and print where it is")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the figure of a saved result (no measuring)")
    args = ap.parse_args(argv)
    if args.replot:
        print(plot(json.loads(Path(args.replot).read_text()), Path(args.replot).with_suffix(".png"))); return 0
    import llama_cpp
    from transformers import AutoTokenizer
    from modforge_nb.config import load_config
    from modforge_nb.models import materialize_model, model_source_file, set_threads
    from modforge_nb.runs import project_root
    from modforge_nb.gguf_export import export_ggufs, search_mix
    from modforge_nb.llamacpp import GGUFModel, gguf_folder
    from modforge_nb.evaluate import perplexity, pydoc_topics
    from modforge_nb.fsutil import atomic_write_json
    from modforge_nb.report import machine
    set_threads(1)
    cfg = load_config(args.config, args.overrides); gc, pc = cfg.gguf, cfg.eval.perplexity
    hf = materialize_model(cfg.model, project_root() / cfg.runtime.cache_dir)
    tok, text = AutoTokenizer.from_pretrained(hf), pydoc_topics("heldout")
    work = Path(tempfile.mkdtemp(prefix="frontier-"))
    t0 = time.monotonic()
    src = hf
    if args.trim_keep_first:   # 0B's trim with keep_first only: the tokenizer's first N ids, bytes and specials
        from modforge_nb.models import load_model
        from modforge_nb.vocab import always_kept
        from modforge_nb.trim import trim_tokenizer, trim_model, fallback
        model, tok0 = load_model(hf)
        keep = set(always_kept(tok0)) | set(range(args.trim_keep_first))
        if args.trim_seen:   # 0B's top-K at coverage 1.0: every token 0A's corpus uses
            from modforge_nb.vocab import build_corpus, token_counts
            counts = sum(token_counts(tok0, [t]) for t in build_corpus(cfg.vocab.corpus, cfg.vocab.max_chars).values())
            keep |= {int(i) for i in counts.nonzero()[0]}
        new_tok, old_ids = trim_tokenizer(tok0, sorted(keep))
        trim_model(model, old_ids, new_tok)
        src = work / f"trim-first{args.trim_keep_first}"; model.save_pretrained(src); new_tok.save_pretrained(src)
        fb = fallback(tok0, new_tok, text, set(always_kept(tok0)), set(always_kept(new_tok))) | {"vocab": len(new_tok)}
        print(f"trim: vocab {len(tok0):,} -> {len(new_tok):,}; held-out text {fb['token_increase']:+.2%} tokens, "
              f"single bytes {fb['byte_share_before']:.2%} -> {fb['byte_share_after']:.2%}")
    ex = export_ggufs(src, hf, work, gc.model_copy(update={"types": ["F16"]}), args.threads, cfg.runtime.seed)
    made = {n: f / "model.gguf" for n, (f, t, k) in ex["made"].items()}
    shipped = model_source_file(cfg.model)
    if shipped and Path(shipped).suffix == ".gguf": made[f"shipped ({Path(shipped).name})"] = Path(shipped)
    found = search_mix(ex["f16"], src, work / "gguf-mix", gc.mix, ex["imatrix"], ex["work"], args.threads) if gc.mix else None
    if found: made["gguf-mix"] = found["folder"] / "model.gguf"
    rows = []
    trimmed_tok = AutoTokenizer.from_pretrained(str(src)) if src != hf else tok
    for name, f in made.items():
        m = GGUFModel(f, n_ctx=max(1024, pc.seq_len + 1), threads=args.threads)
        t_ = tok if name.startswith(("untouched-", "shipped")) or src == hf else trimmed_tok   # each file with its own tokenizer
        try: r = perplexity(m, t_, text, pc.max_tokens, pc.seq_len, progress=False)
        finally: m.close()
        rows.append({"artifact": name, "bytes": f.stat().st_size, "ppl": r["ppl"], "bpb": r["bpb"], "tokens": r["tokens"]})
        print(f"{name:>40}: {rows[-1]['bytes'] / 1e6:7.2f} MB  ppl {r['ppl']:.4f}  bpb {r['bpb']:.4f}", file=sys.stderr)
    ref = next((r for r in rows if r["artifact"].startswith("shipped")), None)
    for r in rows: r["ppl_vs_shipped"] = r["ppl"] / ref["ppl"] - 1 if ref else None
    rows.sort(key=lambda r: r["bytes"])
    info = {"machine": machine(), "python": platform.python_version(), "llama_cpp_python": llama_cpp.__version__,
            "config": args.config, "overrides": args.overrides, "threads": args.threads, "held_out_tokens": pc.max_tokens, "seq_len": pc.seq_len,
            "seconds": round(time.monotonic() - t0), "trim_keep_first": args.trim_keep_first, "trim_seen": args.trim_seen,
            "trim": fb if args.trim_keep_first else None, "mix_recipe": found["recipe"] if found else None,
            "mix_trials": found["trials"] if found else None, "rows": rows}
    out = Path(args.out); out.parent.mkdir(parents=True, exist_ok=True); atomic_write_json(out, info)
    plot(info, out.with_suffix(".png"))
    print(f"Machine: {info['machine']}; llama-cpp-python {info['llama_cpp_python']}; {args.threads} llama.cpp thread(s); "
          f"{pc.max_tokens} held-out tokens, windows of {pc.seq_len}; {info['seconds']} s.\n")
    for r in rows: r["bpb_vs_shipped"] = r["bpb"] / ref["bpb"] - 1 if ref else None
    print("| artifact | MB | ppl | bpb | ppl vs shipped Q4_1 | bpb vs shipped Q4_1 |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        vs = lambda k: f"{r[k]:+.1%}" if r[k] is not None else ""
        print(f"| {r['artifact']} | {r['bytes'] / 1e6:.2f} | {r['ppl']:.3f} | {r['bpb']:.4f} | {vs('ppl_vs_shipped')} | {vs('bpb_vs_shipped')} |")
    if found: print(f"\nmix recipe: {json.dumps(found['recipe'])}")
    if args.keep: print(f"work folder kept: {work}")
    else: shutil.rmtree(work, ignore_errors=True)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
