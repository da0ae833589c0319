"""The whole smoke pipeline (0B, 1A-1C, 2A-2F) once; then the compression track: every row of the frontier, GGUF scored through
llama.cpp, packed files verified, a corrupt pack refused, a killed 2C resumed without a complete-looking leftover."""
import json, os, shutil, signal, subprocess, time
from pathlib import Path
import pytest
from conftest import modforge, manifest, SMOKE, MODFORGE, ROOT, env

from modforge_nb.config import load_config
STEPS = load_config(SMOKE).run.steps   # every step kind of the registry, in order

def _rows(run): return {r["artifact"]: r for r in json.loads((run / "metrics.json").read_text())["rows"]}
def _notes(run, step): return " ".join(manifest(run)["steps"][step].get("notes", []))

@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    "One whole smoke run (every step), shared by the tests here; each test works on its own copy."
    runs = tmp_path_factory.mktemp("runs")
    modforge("run", SMOKE, "--run-id", "c", "--no-progress", runs_dir=runs, check=0)
    return runs / "c"

def _copy(smoke_run, runs_dir, name):
    shutil.copytree(smoke_run, runs_dir / name, symlinks=True); return runs_dir / name

def test_smoke_compression_track(smoke_run, runs_dir):
    run = _copy(smoke_run, runs_dir, "c"); m = manifest(run)
    assert {k: v["status"] for k, v in m["steps"].items()} == {s: "done" for s in STEPS}
    rows = _rows(run)
    kinds = {}
    for name, r in rows.items(): kinds.setdefault(r.get("kind", "base"), []).append(name)
    assert any(n.startswith("trim-k") for n in rows)
    assert {"prune-wanda-50pct", "prune-wanda-2of4"} <= set(rows)
    assert {"w4a16-gptq", "untouched-w4a16-gptq"} <= set(rows)
    assert {"gguf-f16", "gguf-q8_0", "gguf-q4_k_m", "untouched-gguf-q4_k_m"} <= set(rows)
    for name in ("gguf-f16", "gguf-q4_k_m", "untouched-gguf-q4_k_m"):   # scored through llama.cpp, same figures as HF rows
        r = rows[name]
        assert r["bytes"] > 0 and r["ppl"] > 1 and 0 < r["bpb"]
        assert 0 <= r["agree_top1"] <= 1 and r["agree_kl"] >= -1e-6 and r["agree_tokenizer_match"] == 1.0
        # gguf.full_eval=deliverable: the whole suite on the delivered file, the frontier's plane (ppl, bpb) on the others
        if name == "gguf-q4_k_m": assert 0 <= r["arith_mc_acc"] <= 1 and "arith_gen_exact_match" in r
        else: assert "arith_mc_acc" not in r, (name, r)
    assert rows["gguf-q4_k_m"]["bytes"] < rows["gguf-f16"]["bytes"]
    # with the importance matrix (of each model), and the per-tensor mix its search found
    assert {"gguf-q4_1-imat", "untouched-gguf-q4_1-imat", "gguf-mix"} <= set(rows) and rows["gguf-mix"]["kind"] == "mix"
    assert {"pipeline-imatrix", "untouched-imatrix", "mix_search", "mix_trials"} <= set(m["steps"]["2C"]["artifacts"])
    search = json.loads((run / m["steps"]["2C"]["artifacts"]["mix_search"]["path"]).read_text())
    assert search["recipe"] == json.loads(m["steps"]["2C"]["metrics"]["mix_recipe"]) and len(search["trials"]) >= 4
    assert rows["gguf-mix"]["bytes"] < rows["gguf-q8_0"]["bytes"] and 0 <= rows["gguf-mix"]["agree_top1"] <= 1
    # packed rows: real sizes, quality of the verified-identical source
    packed = [n for n in rows if n.endswith(".zst")]
    assert len(packed) == len([n for n in rows if n.startswith(("gguf-", "untouched-gguf-")) and n not in packed]) and all(rows[n]["pack_ratio"] > 1 and rows[n]["ppl"] == rows[rows[n]["packed_from"]]["ppl"] for n in packed)
    # the delivered model is the current one; its temperature is saved for serving
    cur = m["steps"]["2C"]["promotes"]; assert cur == "gguf-q4_k_m"
    cur = m["steps"]["2E"].get("promotes") or cur                          # 2E may ship a recovered file in its place
    t = json.loads((run / m["steps"]["2F"]["artifacts"]["temperature"]["path"]).read_text())
    assert t["model"] == cur and t["temperature"] > 0 and "ece" in rows[cur]
    rep = (run / "report" / "report.md").read_text()
    assert "## Choices" in rep and "Delivered gguf-q4_k_m" in rep
    assert modforge("status", "c", "--verify", runs_dir=runs_dir, check=0).stdout.count("MISMATCH") == 0
    again = modforge("run", SMOKE, "--run-id", "c", "--no-progress", runs_dir=runs_dir, check=0)
    assert again.stderr.count("(skipped)") == len(STEPS), again.stderr
    # a packed file restores byte for byte; a corrupt one is refused with a clear error
    zst = next((run / "2D").glob("gguf-q4_k_m.zst/*.zst"))
    out = modforge("unpack", zst, "-o", runs_dir / "restored.gguf", check=0)
    assert "restored" in out.stdout
    assert (runs_dir / "restored.gguf").read_bytes() == (run / "2C" / "gguf-q4_k_m" / "model.gguf").read_bytes()
    b = bytearray(zst.read_bytes()); b[len(b) // 2] ^= 0xFF; zst.write_bytes(bytes(b))
    bad = modforge("unpack", zst, "-o", runs_dir / "bad.gguf", check=1)
    assert "corrupt" in bad.stderr and "Re-run step 2D" in bad.stderr and not (runs_dir / "bad.gguf").exists()
    assert not list(runs_dir.glob("bad.gguf*"))
    assert "MISMATCH" in modforge("status", "c", "--verify", runs_dir=runs_dir, check=1).stdout

# 2C with only its deliverable (seconds, not minutes): a killed export, then the resume under a gate it cannot pass
ONLY_DELIVERABLE = ("--set", "gguf.types=[Q4_K_M]", "--set", "gguf.untouched_types=[]", "--set", "gguf.imatrix_types=[]",
                    "--set", "gguf.mix=null", "--set", "gguf.agreement_prompts=1")

def test_killed_export_resumes_and_a_failed_gate_delivers_nothing(smoke_run, runs_dir):
    """A 2C killed mid-way leaves nothing that looks complete and resumes; 2C promotes its deliverable only through a
    gate against the model it came from, so resumed under a zero-drop gate it delivers nothing (and still records the row)."""
    run = _copy(smoke_run, runs_dir, "k")
    v = json.loads((run / manifest(run)["steps"]["2C"]["artifacts"]["verdict"]["path"]).read_text())
    assert v["artifact"] == "gguf-q4_k_m" and v["passed"] and "ppl" in v["drops"]      # the smoke gate: within its bound
    assert v["drops"]["ppl"] > 0, "the premise below: the 4-bit file is worse than its fp32 source"
    t0 = time.time()
    proc = subprocess.Popen([str(MODFORGE), "--runs-dir", str(runs_dir), "run", str(SMOKE), "--run-id", "k", "--steps", "2C", "--from", "2C",
                             *ONLY_DELIVERABLE, "--no-progress"],
                            cwd=ROOT, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:      # wait until 2C has made its first GGUF artifact, then kill it mid-way
            try: fresh = [p for p in (run / "2C").iterdir() if p.name.startswith("gguf-") and ".partial" not in p.name
                          and p.stat().st_mtime > t0]
            except FileNotFoundError: fresh = []     # the step folder is being emptied as the step starts
            if fresh: break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        else: raise AssertionError("2C never produced an artifact")
    finally:
        os.killpg(proc.pid, signal.SIGKILL); proc.wait()
    m = manifest(run)
    assert m["steps"]["2C"]["status"] == "running" and "artifacts" not in m["steps"]["2C"]
    for p in (run / "2C").iterdir():       # whatever is on disk is either complete or named as partial
        if p.name.startswith("gguf-") and ".partial" not in p.name: assert (p / "model.gguf").exists()
    # resumed with a zero-drop gate on perplexity, which must refuse the deliverable
    p = modforge("run", SMOKE, "--run-id", "k", "--no-progress", "--steps", "2C", *ONLY_DELIVERABLE,
                 "--set", "gguf.gate={figures: [ppl], max_drop: 0.0}", runs_dir=runs_dir, check=0)
    assert "2C: resuming" in p.stderr, p.stderr
    s = manifest(run)["steps"]["2C"]
    assert s["status"] == "done" and s.get("promotes") is None and s["metrics"]["delivered"] is None, p.stderr[-2000:]
    assert "Nothing delivered: gguf-q4_k_m failed its gate" in _notes(run, "2C") and "Delivered" not in _notes(run, "2C")
    assert "gguf-q4_k_m" in _rows(run)                                   # still recorded as a row, just not shipped
    assert modforge("status", "k", "--verify", runs_dir=runs_dir, check=0).stdout.count("MISMATCH") == 0

def test_teacher_steps_and_a_rerun_from_the_cache(smoke_run, runs_dir):
    "1A trains and is scored, 1B clusters and labels, 1C/2E ask the local server; re-run, they ask nothing new."
    run = _copy(smoke_run, runs_dir, "t"); m = manifest(run); rows = _rows(run)
    assert rows["sft"]["kind"] == "sft" and rows["sft"]["ppl"] > 1 and m["steps"]["1A"]["metrics"]["steps"] >= 1
    b = m["steps"]["1B"]["metrics"]; assert b["failures"] > 0 and b["k"] >= 1 and "failure_clusters" in m["steps"]["1B"]["artifacts"]
    clusters = json.loads((run / m["steps"]["1B"]["artifacts"]["clusters"]["path"]).read_text())
    assert len(clusters["table"]) == b["k"] and sum(r["failures"] for r in clusters["table"]) == b["failures"]
    assert m["steps"]["1C"]["metrics"]["requests"] == b["k"] * 2            # distill.per_cluster = 2 in smoke.yaml
    # 2E: the delivered file's checkpoint + a LoRA, merged, requantized by the file's own recipe, gated against it
    rec = next(r for r in rows.values() if r.get("kind") == "recovered")
    d = m["steps"]["2C"]["metrics"]["delivered"]
    assert rec["recovered_from"] == d and rec["gguf_type"] == rows[d]["gguf_type"] and rec["tensor_types"] == rows[d]["tensor_types"]
    assert (run / "2E" / f"{d}+recovery" / "model.gguf").exists() and not (run / "2E" / "work").exists()
    e = m["steps"]["2E"]; shipped = e["metrics"]["delivered"]
    assert shipped == (e.get("promotes") or d) and (shipped == d) == (e["metrics"]["ppl_after"] >= rows[d]["ppl"] or e.get("promotes") is None)
    assert (f"Delivered {d}+recovery in place of {d}" if e.get("promotes") else f"{d} stays the delivered file") in _notes(run, "2E")
    assert f"{shipped}.zst" in m["steps"]["2D"]["artifacts"]             # 2D runs after 2E: the pack holds what ships
    rep = (run / "report" / "report.md").read_text()
    assert "## Teachers (the ledger)" in rep and "| 1C | local |" in rep and "| cluster | label |" in rep
    again = modforge("run", SMOKE, "--run-id", "t", "--no-progress", "--steps", "1B,1C,2E", "--from", "1B", runs_dir=runs_dir, check=0)
    assert "teachers this invocation: 0 new requests" in again.stderr and "nothing was asked of a teacher" in again.stderr, again.stderr[-3000:]
    m2 = manifest(run)
    for s in ("1B", "1C", "2E"): assert m2["steps"][s]["metrics"]["teacher_new_requests"] == 0 and m2["steps"][s]["metrics"]["teacher_cache_hits"] > 0

def test_pack_only_the_delivered_file(smoke_run, runs_dir):
    "pack.what=delivered: 2D packs the one file that ships (2E's or 2C's), nothing else."
    run = _copy(smoke_run, runs_dir, "pd")
    modforge("run", SMOKE, "--run-id", "pd", "--no-progress", "--steps", "2D", "--from", "2D", "--set", "pack.what=delivered",
             runs_dir=runs_dir, check=0)
    m = manifest(run); s = m["steps"]["2D"]
    shipped = m["steps"]["2E"].get("promotes") or m["steps"]["2C"]["promotes"]
    assert s["status"] == "done" and [a for a in s["artifacts"] if a.endswith(".zst")] == [f"{shipped}.zst"], s["artifacts"]

def test_quantize_notes_say_what_ran(smoke_run, runs_dir):
    "quantize.methods=[awq] on a CPU: nothing is quantized, and the notes say exactly that (no 'GPTQ ran instead', no gate verdict)."
    run = _copy(smoke_run, runs_dir, "q")
    modforge("run", SMOKE, "--run-id", "q", "--no-progress", "--steps", "2B", "--from", "2B", "--set", "quantize.methods=[awq]",
             runs_dir=runs_dir, check=0)
    s = manifest(run)["steps"]["2B"]; notes = _notes(run, "2B")
    assert s["status"] == "done" and s["metrics"]["methods"] == [] and s.get("promotes") is None
    assert "nothing was quantized" in notes and "No W4A16 model was made, so there was nothing to gate" in notes, notes
    assert "GPTQ ran instead" not in notes and "passed the" not in notes

MODIFIER = ROOT / "configs" / "smoke-modifier.yaml"

def test_a_domain_modifier_end_to_end(smoke_run, runs_dir):
    "3x on the smoke run: scores on both bases, a LoRA on the served weights, the grid, PEFT + GGUF LoRA + card; switched by name."
    import torch
    from modforge_nb.lora_gguf import ModifiedGGUF, PeftModifiers, served_checkpoint
    from modforge_nb.models import load_model
    import yaml
    run = _copy(smoke_run, runs_dir, "m")
    sets = ["--set", "modifier=" + json.dumps(yaml.safe_load(MODIFIER.read_text())["modifier"])]   # smoke-modifier.yaml's settings
    assert modforge("modifiers", "m", "--domains", "reasoning,poetry", runs_dir=runs_dir, check=2).stderr.count("unknown domain 'poetry'")
    p = modforge("modifiers", "m", "--domains", "reasoning", *sets, "--no-progress", runs_dir=runs_dir, check=0)
    m = manifest(run); s = m["steps"]["reasoning"]
    assert s["status"] == "done", p.stderr[-4000:]
    assert all(m["steps"][k]["status"] == "done" for k in STEPS) and "| reasoning | 0" in p.stdout and "Largest modifier:" in p.stdout
    assert s["metrics"]["train_processes"] == 2     # smoke-modifier.yaml: the LoRA trained through `accelerate launch` on 2 CPU processes
    # 6A-6C on the same run (smoke-modifier.yaml's settings): the router, the escalation detector and signals, the thresholds
    p = modforge("run", MODIFIER, "--run-id", "m", "--steps", "6A,6B,6C", "--no-progress", runs_dir=runs_dir, check=0)
    m = manifest(run)
    for k in ("6A", "6B", "6C"): assert m["steps"][k]["status"] == "done", (k, p.stderr[-4000:])
    a, b, c = (m["steps"][k]["metrics"] for k in ("6A", "6B", "6C"))
    assert a["design"] in ("tfidf", "minilm", "hidden") and 0 <= a["accuracy"] <= 1 and a["bytes"] > 0, a
    assert 0 <= b["detector_accuracy"] <= 1 and b["signal_items"] == 4, b        # 4 reasoning items with the reasoning modifier
    signals = [json.loads(l) for l in (run / m["steps"]["6B"]["artifacts"]["signals"]["path"]).read_text().splitlines()]
    assert {s["domain"] for s in signals} == {"reasoning"} and all(0 <= s["p_min"] <= 1 and s["sample_seconds"] >= 0 for s in signals)
    th = json.loads((run / m["steps"]["6C"]["artifacts"]["thresholds"]["path"]).read_text())
    assert 0 <= th["routing"] < 1 and 0 < th["detector"] < 1 and th["escalation_tier"]["serves"] == "reference solver, not a model", th
    assert th["validation_items"] == 4 and 0 <= c["accuracy"] <= 1 and "Thresholds on 4 validation items" in _notes(run, "6C")
    # 8: the gates on the whole served system. Forced to fail (a size bar no system meets): nothing deployed, the alert written,
    # exit non-zero naming the gate; then passing: runs/deployed points at the run, and `modforge serve` without a run would serve it
    p = modforge("run", MODIFIER, "--run-id", "m", "--steps", "8", "--set", "system_gates.max_size_share=0.01", "--no-progress",
                 runs_dir=runs_dir, check=1)
    assert "size <= 0.01 x fp16 base" in p.stderr and not (runs_dir / "deployed").exists(), p.stderr[-3000:]
    assert json.loads((run / "8" / "alert.json").read_text())["passed"] is False
    p = modforge("run", MODIFIER, "--run-id", "m", "--steps", "8", "--no-progress", runs_dir=runs_dir, check=0)
    g = manifest(run)["steps"]["8"]
    assert g["status"] == "done" and g["metrics"]["passed"] and (runs_dir / "deployed").resolve() == run.resolve(), p.stderr[-3000:]
    assert 0 <= g["metrics"]["reasoning_system"] <= 1 and "## Quality gates (step 8)" in (run / "report" / "report.md").read_text()
    # a later run whose gates fail leaves the last good one deployed (and says so in its alert)
    run2 = _copy(run, runs_dir, "m2"); (run2 / "8" / "alert.json").unlink(missing_ok=True)
    p = modforge("run", MODIFIER, "--run-id", "m2", "--steps", "8", "--set", "system_gates.max_size_share=0.01", "--no-progress",
                 runs_dir=runs_dir, check=1)
    assert (runs_dir / "deployed").resolve() == run.resolve(), p.stderr[-3000:]
    a = json.loads((run2 / "8" / "alert.json").read_text())
    assert a["passed"] is False and a["deployed"] == "m" and "runs/deployed stays m" in p.stderr, (a, p.stderr[-3000:])
    assert (run / "report" / "report.html").exists() and "## Costs: actual against configured estimate" in (run / "report" / "report.md").read_text()
    # modforge route: one query, then JSON lines in order (a bad line answers with an error and the rest go on)
    r = json.loads(modforge("route", "m", "Write a Python function `add` that returns the sum of a and b.", runs_dir=runs_dir, check=0).stdout)
    assert set(r) == {"domain", "confidence", "modifier"} and 0 <= r["confidence"] <= 1 and r["modifier"] in (None, "reasoning"), r
    lines = runs_dir / "q.jsonl"
    lines.write_text(json.dumps({"text": "All cats are birds. Is Ana a bird?"}) + "\nnot json\n" + json.dumps({"text": ""}) + "\n"
                     + json.dumps({"text": "x" * 1_000_000}) + "\n" + json.dumps({"text": "¿Cuál es la capital de Francia?"}) + "\n")
    out = [json.loads(l) for l in modforge("route", "m", "--jsonl", lines, runs_dir=runs_dir, check=1).stdout.splitlines()]   # 1: a line was bad
    assert len(out) == 5 and "error" in out[1] and all("domain" in o for i, o in enumerate(out) if i != 1), out
    # the batch notebook (make run-phase2) on the same run and domain: the step is skipped, the summary is shown; then 14A and 15A
    out = runs_dir / "batch.ipynb"
    b = subprocess.run([str(ROOT / ".venv/bin/papermill"), str(ROOT / "nbs/phase2/modifiers_batch.ipynb"), str(out), "-p", "run_dir", str(run),
                        "-p", "domains", "reasoning", "-y", json.dumps({"overrides": sets[1:]}), "-k", "python3"],
                       capture_output=True, text=True, env=env(), cwd=ROOT)
    assert b.returncode == 0, b.stderr[-3000:]
    text = out.read_text()
    assert "(skipped)" in text and "| reasoning |" in text and "Largest modifier:" in text, text[-3000:]
    m = manifest(run)
    assert m["steps"]["14A"]["status"] == "done" and m["steps"]["15A"]["status"] == "done", text[-3000:]
    assert "14A + 15A:" in text and m["steps"]["15A"]["metrics"], m["steps"]["15A"]
    # 17 last: every registry domain in one table (reasoning built, the other seven listed as not built), each of 16A's modes, voted
    v = m["steps"]["17"]
    assert v["status"] == "done" and (v["metrics"]["domains"], v["metrics"]["domains_built"], v["metrics"]["voted_items"]) == (8, 1, 2), v
    assert all(0 <= v["metrics"][f"reasoning_{x}"] <= 1 for x in ("turbo", "balanced", "max", "voted")) and "17: " in text, v["metrics"]
    vt = (run / "17" / "validation.md").read_text()
    assert "| code | no |" in vt and "| reasoning | yes | 4 |" in vt and "| MB served (base + modifiers) |" in vt, vt
    folder = run / s["artifacts"]["modifier-reasoning"]["path"]
    card = json.loads((folder / "card.json").read_text())
    assert (folder / "peft" / "adapter_model.safetensors").exists() and card["gguf_lora_bytes"] == (folder / "reasoning.gguf").stat().st_size
    for k in ("uncompressed_base", "served_base", "modifier", "full_adapter", "fp32_trained"): assert 0 <= card[f"reasoning_acc_{k}"] <= 1, (k, card)
    assert card["heldout_items"] == 6 and card["train_examples"] + card["val_examples"] == 24 and card["trained_rank"] == 4
    # the served base's failures on the probe were clustered; 6 questions aimed at them went down the tiers (the fixture, then
    # the reference solver, which settles every generated question), and the card counts what each tier settled
    tiers = {t["tier"]: t for t in card["teacher_tiers"]}
    assert card["probe_items"] == 8 and card["aimed_asked"] == 6 and list(tiers) in (["local", "reference"], ["local"]), card
    assert sum(t["settled"] for t in tiers.values()) == 6 and card["aimed_unsettled"] == 0
    assert tiers["local"]["asked"] == 6 and (tiers["local"]["settled"] == 6 or tiers["reference"]["serves"] == "reference solver, not a model")
    assert card["data"]["generator reference answers"] == 24 - 6 and "## Teacher tiers" in (folder / "card.md").read_text()
    assert "## Domain modifiers" in (run / "report" / "report.md").read_text() and (run / "report" / "modifiers.png").exists()
    table = (run / s["artifacts"]["variants"]["path"]).read_text().splitlines()[2:]       # a markdown table, a row per variant
    assert sorted(l.split("|")[1].strip() for l in table) == ["r2-s0-float16", "r2-s50-float16", "r4-s0-float16", "r4-s50-float16"]
    row = _rows(run)["modifier-reasoning"]; assert row["kind"] == "modifier" and row["reasoning_acc"] == card["reasoning_acc_modifier"]
    assert not (run / "reasoning" / "work").exists() and "served base + modifier" in _notes(run, "reasoning")
    # the packaged modifier switches by name on the served GGUF (llama.cpp) and on its weights in HF (peft), and they agree
    served = run / m["steps"][m["steps"]["reasoning"]["inputs"]["model"]["step"]]["artifacts"][m["steps"]["reasoning"]["inputs"]["model"]["artifact"]]["path"]
    g = ModifiedGGUF(served / "model.gguf", {"reasoning": folder / "reasoning.gguf"})
    ids = g.tokenize("All cats are birds. Is Ana one of the birds?")
    plain = g.window_logits(ids); g.use("reasoning"); mod = g.window_logits(ids); g.close()
    assert not torch.allclose(plain, mod)
    hf, _ = load_model(str(served_checkpoint(served, runs_dir / "served-hf")))
    pm = PeftModifiers(hf, {"reasoning": folder / "peft"})
    with torch.no_grad(): hm = pm.use("reasoning")(torch.tensor([ids])).logits[0]
    assert (hm.argmax(-1) == mod.argmax(-1)).float().mean() >= 0.8
