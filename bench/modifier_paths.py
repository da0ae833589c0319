"""The two inference paths of a packaged modifier give the same held-out score: llama.cpp (the served GGUF + the
GGUF LoRA, `ModifiedGGUF`) and peft (the served weights in HF + the PEFT adapter, `PeftModifiers`, transformers'
greedy decode), both switched by name on one loaded base.

    .venv/bin/python bench/modifier_paths.py RUN_DIR DOMAIN [DOMAIN ...] [--limit N]

Each DOMAIN must be a done step 3x of RUN_DIR (its `modifier-<domain>` folder). Prints a table: per domain, the card's
figure, both paths' scores on the same held-out items, and how many items the two paths answer differently.
"""
from __future__ import annotations
import argparse, json, tempfile, time
from pathlib import Path

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path); ap.add_argument("domains", nargs="+"); ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    from transformers import AutoTokenizer
    from modforge_nb.runs import Run
    from modforge_nb.domains import load_domain, domain_items, score_domain
    from modforge_nb.lora_gguf import ModifiedGGUF, PeftModifiers, served_checkpoint
    from modforge_nb.models import load_model
    from modforge_nb.report import machine
    run = Run.open(args.run); m = run.manifest()["steps"]; cfg = run.config()
    folders = {}
    for d in args.domains:
        s = m.get(d, {})
        if s.get("status") != "done": raise SystemExit(f"{d}: not a done step of {run.id}")
        folders[d] = run.path / s["artifacts"][f"modifier-{d}"]["path"]
    inp = m[args.domains[0]]["inputs"]["model"]
    served = run.path / m[inp["step"]]["artifacts"][inp["artifact"]]["path"]
    tok = AutoTokenizer.from_pretrained(str(served))
    g = ModifiedGGUF(served / "model.gguf", {d: f / f"{d}.gguf" for d, f in folders.items()}, n_ctx=1024, threads=1)
    hf, _ = load_model(str(served_checkpoint(served, Path(tempfile.mkdtemp()) / "served-hf")))
    pm = PeftModifiers(hf, {d: f / "peft" for d, f in folders.items()})
    rows = []
    for d in args.domains:
        spec = load_domain(d); spec = spec.model_copy(update={"eval": spec.eval.model_copy(update={"humaneval": 0})})
        items = domain_items(spec, "heldout", args.limit or cfg.modifier.heldout_limit, cfg.runtime.seed)
        card = json.loads((folders[d] / "card.json").read_text())
        g.use(d); t0 = time.monotonic(); a = score_domain(g, tok, spec, items, 8, progress=False); ta = time.monotonic() - t0
        t0 = time.monotonic(); b = score_domain(pm.use(d), tok, spec, items, 8, backend="torch", progress=False); tb = time.monotonic() - t0
        differ = sum(x["passed"] != y["passed"] for x, y in zip(a["rows"], b["rows"]))
        rows.append((d, len(items), card[f"{d}_acc_modifier"], a[f"{d}_acc"], b[f"{d}_acc"], differ, ta, tb))
    g.close()
    print(f"run {run.id}, served base {inp['artifact']}; {machine()}\n")
    print("| domain | items | card | llama.cpp (GGUF + GGUF LoRA) | peft (HF + adapter) | items scored differently | s llama.cpp | s peft |\n|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows: print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.3f} | {r[5]} | {r[6]:.0f} | {r[7]:.0f} |")
    return 0

if __name__ == "__main__": raise SystemExit(main())
