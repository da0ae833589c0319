"""Training on 1..N processes through `accelerate launch` — the path a step takes with `train.processes: N` — against one
process in this process: wall time, steps/s, tokens/s, the speed-up over one launched process, and the best validation
loss of each run (the same recipe and global batch: quality must agree within noise). Prints a markdown table.

  python bench/multi_gpu.py --device cuda --processes 1,2 --random-init DIR   # a GPU host (DIR: a config.json + tokenizer)
  python bench/multi_gpu.py --device cpu --processes 1,2                       # here: the fixture model, gloo

Data: the curated SFT set the project ships (sftdata.load_sft). The model: --model (an HF checkpoint), --random-init
(SmolLM2's architecture from its config, seeded random weights: throughput is the same, losses are of a model learning from
scratch), or the tiny fixture model. Results: bench/RESULTS.md."""
import argparse, json, platform, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

def load(args):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    if args.model: m, t = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype), AutoTokenizer.from_pretrained(args.model)
    elif args.random_init:
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(args.random_init), dtype=dtype)
        t = AutoTokenizer.from_pretrained(args.random_init)
    else:
        from modforge_nb.config import ModelSection
        from modforge_nb.models import materialize_model, load_model
        from modforge_nb.runs import project_root
        m, t = load_model(materialize_model(ModelSection(source="fixture"), project_root() / "cache"))
    return m.to(args.device if args.device == "cpu" else "cuda:0"), t

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--processes", default="1,2", help="comma-separated process counts to launch")
    ap.add_argument("--model"); ap.add_argument("--random-init")
    ap.add_argument("--method", default="lora", choices=["lora", "full"])
    ap.add_argument("--strategy", default="ddp", choices=["ddp", "fsdp"])
    ap.add_argument("--steps", type=int, default=30); ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256); ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--work", default="/tmp/modforge-bench-multi"); ap.add_argument("--json")
    args = ap.parse_args()
    import torch
    from modforge_nb.config import TrainSpec, LoraSpec
    from modforge_nb.finetune import sft_train, split_rows
    from modforge_nb.launch import launch_train
    from modforge_nb.sftdata import load_sft
    tr, va = split_rows(load_sft("default", limit=args.rows), 0.1)
    base = dict(method=args.method, max_steps=args.steps, eval_every=max(1, args.steps // 3), patience=10, batch_size=args.batch,
                max_length=args.max_length, learning_rate=2e-4 if args.method == "lora" else 5e-5, lora=LoraSpec(r=16, alpha=32))
    runs = [("in this process", 1, False)] + [(f"launched, {n} process{'es' if n > 1 else ''}", n, True)
                                               for n in map(int, args.processes.split(","))]
    rows = []
    for label, n, launch in runs:
        m, t = load(args)
        spec = TrainSpec(**base, processes=n, strategy=args.strategy)
        t0 = time.monotonic()
        fn = launch_train if launch else sft_train    # launch_train on 1 process: the job's hand-over without a process group
        _, info = fn(m, t, tr, va, spec, f"{args.work}/{n}{'l' if launch else ''}", 0, args.device)
        wall = time.monotonic() - t0
        rows.append({"run": label, "processes": n, "wall_s": wall, "train_s": info["seconds"], "steps": info["steps"],
                     "global_batch": info["global_batch"], "tokens": info["tokens"], "steps_per_s": info["steps"] / info["seconds"],
                     "tokens_per_s": info["tokens"] / info["seconds"], "best_eval_loss": info["best_eval_loss"],
                     "first_eval_loss": info["first_eval_loss"]})
        print(json.dumps(rows[-1]), flush=True)
        del m; torch.cuda.empty_cache() if args.device == "cuda" else None
    one = next((r for r in rows if r["run"].startswith("launched, 1 ")), rows[0])
    dev = torch.cuda.get_device_name(0) if args.device == "cuda" else f"{platform.processor() or 'CPU'}"
    print(f"\n{args.method} ({args.strategy}), {args.steps} steps, global batch {rows[0]['global_batch']}, max_length {args.max_length}, "
          f"{len(tr)} rows; {dev}, torch {torch.__version__}\n")
    print("| run | processes | wall s | train s | steps/s | tokens/s | speed-up (train s) | first → best val loss |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['run']} | {r['processes']} | {r['wall_s']:.1f} | {r['train_s']:.1f} | {r['steps_per_s']:.2f} | {r['tokens_per_s']:.0f} | "
              f"{one['train_s'] / r['train_s']:.2f}x | {r['first_eval_loss']:.3f} → {r['best_eval_loss']:.3f} |")
    if args.json: Path(args.json).write_text(json.dumps(rows, indent=1))

if __name__ == "__main__":
    main()
