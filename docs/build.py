"""Render every notebook to HTML in _docs/ (executed, with outputs), plus an index page.

nbdev's own docs need quarto, which cannot be installed offline, so this uses nbconvert, which installs from PyPI.
Step notebooks (nbs/phase*/) are rendered from a finished run when there is one (runs/$DOCS_RUN, default
`default`: what `make run` made), so their pages show the real model's outputs; otherwise they are executed on
a scratch smoke run like the library notebooks (each first runs the steps before it: slower).
Usage: python docs/build.py [--no-execute]
"""
import os
import html, json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "_docs"

def title(nb: Path) -> str:
    for c in json.loads(nb.read_text())["cells"]:
        if c["cell_type"] == "markdown":
            for line in "".join(c["source"]).splitlines():
                if line.startswith("# "): return line[2:].strip()
    return nb.stem

def executed_in_run(nb: Path) -> Path | None:
    "The executed copy of step notebook `nb` in the docs run, if that step is done there."
    run = ROOT / "runs" / os.environ.get("DOCS_RUN", "default")
    try: steps = json.loads((run / "manifest.json").read_text())["steps"]
    except (OSError, ValueError): return None
    from modforge_nb.config import STEP_NOTEBOOKS
    for sid, path in STEP_NOTEBOOKS.items():
        s = steps.get(sid, {})
        if path == str(nb.relative_to(ROOT / "nbs")) and s.get("status") == "done" and s.get("notebook"):
            return run / s["notebook"]
    return None

def main(execute: bool = True) -> None:
    nbs = sorted((ROOT / "nbs").glob("*.ipynb")) + sorted((ROOT / "nbs").glob("phase*/*.ipynb"))
    links = []
    for i, nb in enumerate(nbs, 1):
        rel = nb.relative_to(ROOT / "nbs")
        out_dir = OUT / rel.parent
        done = executed_in_run(nb) if rel.parent.name.startswith("phase") else None
        print(f"[{i}/{len(nbs)}] {rel}" + (f" (from {done.relative_to(ROOT)})" if done else ""), flush=True)
        cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--output-dir", str(out_dir),
               "--output", nb.stem, str(done or nb)]
        if execute and not done: cmd[4:4] = ["--execute", "--ExecutePreprocessor.kernel_name=python3", "--ExecutePreprocessor.timeout=1800"]
        subprocess.run(cmd, check=True, cwd=nb.parent, capture_output=True)
        links.append(f'<li><a href="{html.escape(str(rel.with_suffix(".html")))}">{html.escape(title(nb))}</a> '
                     f'<code>{html.escape(str(rel))}</code></li>')
    (OUT / "index.html").write_text("<!doctype html><meta charset=utf-8><title>ModForge notebooks</title>"
                                   "<h1>ModForge notebooks</h1><ul>" + "\n".join(links) + "</ul>\n")
    print(f"docs: {OUT / 'index.html'}")

if __name__ == "__main__":
    main(execute="--no-execute" not in sys.argv)
