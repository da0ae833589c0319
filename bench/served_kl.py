"""How close the weights a modifier trains on are to what is served: KL(served GGUF || HF checkpoint) per position.

    .venv/bin/python bench/served_kl.py RUN_DIR [--positions N]

RUN_DIR's current model must be a GGUF folder (2C's deliverable, or 2E's). Two HF checkpoints are compared with
llama.cpp's logits on the served file, over the same positions of a code prompt: the served file dequantized back
to HF (`lora_gguf.served_checkpoint`: what step 3x trains on) and the pre-GGUF checkpoint the file was made from
(the fp32 weights a LoRA would otherwise be trained on; a W4A16 checkpoint is decompressed first). Prints a table.
"""
from __future__ import annotations
import argparse, sys, tempfile
from pathlib import Path

PROMPT = ('def fizzbuzz(n: int) -> list[str]:\n    """Return the FizzBuzz strings from 1 to n."""\n    out = []\n'
          '    for i in range(1, n + 1):\n        if i % 15 == 0:\n            out.append("FizzBuzz")\n')

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path); ap.add_argument("--positions", type=int, default=40)
    args = ap.parse_args(argv)
    import torch
    from modforge_nb.runs import Run, current_model, lineage
    from modforge_nb.llamacpp import GGUFModel
    from modforge_nb.lora_gguf import served_checkpoint
    from modforge_nb.compress import dense_checkpoint
    from modforge_nb.models import load_model
    from modforge_nb.report import machine
    run = Run.open(args.run); cur = current_model(run)
    served = Path(cur["path"])
    if not (served / "model.gguf").exists(): sys.exit(f"{served}: the current model of {run.id} is not a GGUF folder")
    src = [m["path"] for m in lineage(run) if not (Path(m["path"]) / "model.gguf").exists()][-1]
    work = Path(tempfile.mkdtemp())
    g = GGUFModel(served / "model.gguf", n_ctx=512, threads=1)
    ids = g.tokenize(PROMPT)[: args.positions]
    ref = torch.log_softmax(g.window_logits(ids).float(), -1); g.close()
    rows = []
    for label, path in (("served file dequantized (3x trains here)", served_checkpoint(served, work / "served-hf")),
                        (f"pre-GGUF checkpoint {Path(src).name}", dense_checkpoint(src, work / "dense"))):
        model, _ = load_model(str(path))
        with torch.no_grad(): lp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
        kl = (ref.exp() * (ref - lp)).sum(-1)
        agree = (ref.argmax(-1) == lp.argmax(-1)).float().mean()
        rows.append((label, kl.mean().item(), kl.max().item(), agree.item())); del model
    print(f"run {run.id}, served {cur['artifact']} ({(served / 'model.gguf').stat().st_size / 1e6:.1f} MB), {len(ids)} positions; {machine()}\n")
    print("| HF checkpoint | mean KL(served ‖ it) | max KL | top-1 agreement |\n|---|---:|---:|---:|")
    for r in rows: print(f"| {r[0]} | {r[1]:.4f} | {r[2]:.4f} | {r[3]:.3f} |")
    return 0

if __name__ == "__main__": raise SystemExit(main())
