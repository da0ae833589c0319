"""Wall time and peak memory of every step of a run, from its manifest.json, as a markdown table; with a second run
(say the H200 run of configs/gpu.yaml) its wall times and the speed-up beside them.

    .venv/bin/python bench/pipeline.py runs/default                                # one run
    .venv/bin/python bench/pipeline.py runs/default bench/results/gpu_manifest.json   # CPU against GPU

Wall time is the manifest's started -> ended of the step's last attempt (papermill's kernel start included, the
engine's few seconds between steps not); peak memory is what the step's kernel recorded when it finished
(`step.peak_rss_mb`: the largest resident set of the kernel or of a child it waited for). A step that never
finished shows its status instead."""
import datetime as dt, json, sys
from pathlib import Path

def manifest(p: Path) -> dict:
    p = Path(p)
    return json.loads((p / "manifest.json" if p.is_dir() else p).read_text())

def seconds(s: dict) -> float | None:
    if not (s.get("started") and s.get("ended")): return None
    return (dt.datetime.fromisoformat(s["ended"]) - dt.datetime.fromisoformat(s["started"])).total_seconds()

def table(run: Path, other: Path | None = None) -> str:
    m, o = manifest(run), (manifest(other) if other else None)
    head = "| step | status | wall s | peak RSS MB |" + (" other run's wall s | speed-up |" if o else "")
    out = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    tot = tot_o = 0.0
    for sid, s in m["steps"].items():
        w = seconds(s); tot += w or 0
        row = f"| {sid} | {s.get('status')} | {'' if w is None else f'{w:.0f}'} | {s.get('peak_rss_mb', '')} |"
        if o:
            so = o["steps"].get(sid, {}); wo = seconds(so); tot_o += wo or 0
            row += f" {'' if wo is None else f'{wo:.0f}'} ({so.get('status', 'absent')}) | {f'{w / wo:.1f}x' if w and wo else ''} |"
        out.append(row)
    out.append(f"| **total** | | **{tot:.0f} ({tot / 60:.1f} min)** | |" + (f" {tot_o:.0f} ({tot_o / 60:.1f} min) | |" if o else ""))
    return "\n".join(out)

if __name__ == "__main__":
    a = [Path(p) for p in sys.argv[1:]]
    if not a or not (a[0].is_file() or (a[0] / "manifest.json").exists()):
        sys.exit(f"usage: {sys.argv[0]} RUN_DIR_OR_MANIFEST [OTHER]: no manifest.json at {a[0] if a else '(nothing given)'}")
    print(table(a[0], a[1] if len(a) > 1 else None))
