"""`modforge deploy space` for real: a run folder holding the tiny served system (the fixture model as an F16 GGUF,
its Q8_0 as mode turbo, one random GGUF LoRA modifier, `reasoning`) is bundled, the bundle's every sha256 is checked,
and its `app.py` is started the way its README says (`python OUT/app.py --port N`, from outside the project): the
bundled package serves (not the project's), /healthz answers, the openai client gets an answer from the forced
modifier, and every package the running app imported is pinned in the bundle's requirements.txt. Then `--push`
offline and against an unreachable Hub: the upload plan is printed, the exit is 1 with the cause, the bundle is intact.
(The CLI wiring is the lead's: these call `modforge_nb.deploy.deploy_main`, the same parser and handler.)"""
import hashlib, json, os, shutil, signal, socket, subprocess, sys, time, urllib.error, urllib.request
from pathlib import Path
import openai, pytest
from conftest import MODFORGE, ROOT, env, hand_run

DEPLOY = [str(MODFORGE)]                      # the CLI itself: `modforge deploy ...`

@pytest.fixture(scope="module")
def served():
    from modforge_nb.serve_backend import tiny_served
    return tiny_served(ROOT / "cache")            # built once (~40 s), then reused from the cache

@pytest.fixture(scope="module")
def bundle(served, tmp_path_factory):
    "(run folder, bundle folder, what `deploy space` printed): the run bundled with its turbo mode."
    tmp = tmp_path_factory.mktemp("deploy")
    run, out = hand_run(tmp, served, {"2C/gguf/quantize.log": "a run's GGUF folder holds more than serving reads",
                                      "serve/keys.yaml": "ops: {sha256: " + "0" * 64 + ", tier: admin}\n"}), tmp / "space"
    p = subprocess.run(DEPLOY + ["deploy", "space", str(run), str(out), "--mode", "turbo=2C/gguf-q8_0"], capture_output=True,
                       text=True, env=env(), cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return run, out, p.stdout

def test_bundle_manifest_checks_out(bundle):
    run, out, said = bundle
    assert f"run it here: {sys.executable} {out / 'app.py'} --port 8001" in said, said
    m = json.loads((out / "bundle.json").read_text())
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert on_disk == sorted([f["path"] for f in m["files"]] + ["bundle.json"])
    for f in m["files"]:                                   # every file, hashed again here
        data = (out / f["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"]), f["path"]
    assert m["serves"]["modifiers"] == {"reasoning": {"gguf": "artifacts/modifiers/reasoning.gguf", "phase": 1, "step": "reasoning"}}
    assert (m["run_id"], m["serves"]["base_name"], m["serves"]["modes"]) == ("tinyrun", "tinyrun", {"turbo": "artifacts/modes/turbo"})
    assert (out / "artifacts/base/model.gguf").read_bytes() == (run / "2C/gguf/model.gguf").read_bytes()
    assert not (out / "artifacts/base/quantize.log").exists() and not any("keys" in p for p in on_disk)   # the run's keys file stays home
    assert not [p for p in on_disk if not p.startswith("modforge_nb/") and str(run.parent) in (out / p).read_text(errors="ignore")]
    front = (out / "README.md").read_text().split("---")[1]
    assert "sdk: docker" in front and "app_port: 7860" in front

def _free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def _imported_distributions(importtime_log: Path) -> set[str]:
    "The installed distributions whose modules a process imported (from its `python -X importtime` log), canonical names."
    from importlib.metadata import packages_distributions
    from packaging.utils import canonicalize_name
    tops = {l.rsplit("|", 1)[1].strip().split(".")[0] for l in importtime_log.read_text().splitlines() if l.startswith("import time:")}
    dists = packages_distributions()
    return {canonicalize_name(d) for t in tops - set(sys.stdlib_module_names) for d in dists.get(t, [])} - {"modforge-nb"}

def _site_view(requirements: Path, dest: Path) -> Path:
    "A folder of links to the installed files of exactly the distributions `requirements` pins: a site-packages holding nothing else."
    from importlib.metadata import distribution
    dest.mkdir()
    for line in requirements.read_text().splitlines():
        if line.startswith(("#", "-")) or "==" not in line: continue
        d = distribution(line.split("==")[0].strip())
        for top in {Path(str(f)).parts[0] for f in d.files or [] if not str(f).startswith("..")}:
            if not (dest / top).exists(): (dest / top).symlink_to(Path(d.locate_file(top)))
    return dest

def _serve(cmd: list[str], tmp: Path, errlog: Path, **extra_env):
    "Start the bundle's app (`cmd` + port and log); (process, url, start message) once /healthz answers."
    port = _free_port()
    with open(errlog, "w") as err:
        p = subprocess.Popen(cmd + ["--port", str(port), "--ctx", "512", "--log", str(tmp / "requests.sqlite")], stdout=subprocess.PIPE,
                             stderr=err, text=True, env=env() | extra_env, cwd=tmp)
    said = []
    for line in p.stdout:
        said.append(line)
        if line.startswith("OpenAI base_url"): break
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5): break
        except (urllib.error.URLError, ConnectionError):
            if p.poll() is not None: break
            time.sleep(0.1)
    assert p.poll() is None, "".join(said) + errlog.read_text()[-3000:]
    return p, url, "".join(said)

def _stop(p):
    p.send_signal(signal.SIGTERM)
    try: p.wait(15)
    except subprocess.TimeoutExpired: p.kill(); p.wait(10)

def _ask(url, model="reasoning"):
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=60)
    return client, client.chat.completions.create(model=model, messages=[{"role": "user", "content": "What is 2 + 2?"}], max_tokens=4, temperature=0)

def test_app_serves_the_bundle_with_one_command(bundle, tmp_path):
    "As the README says: this project's python, `app.py --port N`, from outside the project."
    _, out, _ = bundle
    t0 = time.monotonic()
    p, url, said = _serve([sys.executable, str(out / "app.py")], tmp_path, tmp_path / "stderr.log")
    try:
        assert f"(modforge_nb from {out / 'modforge_nb'})" in said, said            # the bundle's own package, not the project's
        assert "open on loopback (no keys file)" in said and "modifiers: reasoning (phase 1)" in said, said
        with urllib.request.urlopen(url + "/healthz", timeout=5) as r: health = json.loads(r.read())
        assert health["modifiers"] == ["reasoning"] and sorted(health["modes"]) == ["balanced", "turbo"], health
        client, r = _ask(url)
        assert (r.model, r.modforge["modifier"], r.modforge["route"]) == ("reasoning", "reasoning", "named by model")
        assert 1 <= r.usage.completion_tokens <= 4
        assert [m.id for m in client.models.list()] == ["tinyrun", "tinyrun:turbo", "reasoning"]
        with urllib.request.urlopen(url + "/", timeout=10) as r: assert r.url == url + "/chat" or r.url.startswith(url + "/chat")
        print(f"bundle app: started and answered in {time.monotonic() - t0:.1f} s")
    finally: _stop(p)

def test_the_pinned_packages_are_enough(bundle, tmp_path):
    """The app again, with nothing importable but the bundle and the distributions its requirements.txt pins (linked
    from this venv; `python -S`: no site-packages): it serves, and every package it names as imported was imported."""
    from packaging.utils import canonicalize_name
    _, out, _ = bundle
    view, errlog = _site_view(out / "requirements.txt", tmp_path / "site"), tmp_path / "stderr.log"
    p, url, said = _serve([sys.executable, "-S", "-X", "importtime", str(out / "app.py")], tmp_path, errlog, PYTHONPATH=str(view))
    try:
        _, r = _ask(url)
        assert r.modforge["modifier"] == "reasoning" and r.usage.completion_tokens >= 1
    finally: _stop(p)
    imported = _imported_distributions(errlog)
    direct = {canonicalize_name(r["name"]) for r in json.loads((out / "bundle.json").read_text())["requirements"] if r["why"]}
    assert direct - imported <= {"pyyaml"}, f"required but never imported: {sorted(direct - imported)}"   # yaml: only with a keys file
    assert {"gradio", "torch", "llama-cpp-python", "fastapi"} <= imported

def test_app_refuses_an_open_public_bind_and_verifies_itself(bundle, tmp_path):
    "A Space binds 0.0.0.0: without keys app.py refuses (before loading any model); `--verify` re-hashes every file."
    _, out, _ = bundle
    app = [sys.executable, str(out / "app.py")]
    p = subprocess.run(app + ["--host", "0.0.0.0", "--port", str(_free_port())], capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("app.py: error: refusing to serve 0.0.0.0 without a keys file"), p.stderr[-2000:]
    v = subprocess.run(app + ["--verify"], capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=120)
    assert (v.returncode, v.stdout) == (0, f"{out}: every file matches bundle.json\n"), v.stderr[-2000:]

def _push(args, out, **extra):
    e = {k: v for k, v in env().items() if k != "HF_TOKEN"} | extra
    return subprocess.run(DEPLOY + args, capture_output=True, text=True, env=e, cwd=ROOT, timeout=120)

def test_push_offline_says_why_and_changes_nothing(bundle):
    _, out, _ = bundle
    before = sorted(p.name for p in out.parent.iterdir())
    files = json.loads((out / "bundle.json").read_text())["files"]
    p = _push(["deploy", "push", str(out), "--repo-id", "someone/tiny-space"], out, HF_TOKEN="hf_not_a_token")   # env(): HF_HUB_OFFLINE=1
    assert p.returncode == 1, (p.stdout[-2000:], p.stderr[-2000:])
    plan = p.stdout.splitlines()
    n, total = len(files) + 1, sum(f["bytes"] for f in files) + (out / "bundle.json").stat().st_size
    assert plan[0] == (f"upload to the Space someone/tiny-space (https://huggingface.co/spaces/someone/tiny-space; PUBLIC: anyone can "
                       f"see it; sdk docker): {n} files, {total:,} bytes"), plan[0]
    assert [l.split()[-1] for l in plan[1:]] == [f["path"] for f in files] + ["bundle.json"]
    assert p.stderr.startswith("modforge: cannot push: nothing was uploaded: offline: HF_HUB_OFFLINE is set") and \
           f"modforge deploy push {out} --repo-id someone/tiny-space" in p.stderr, p.stderr
    port = _free_port()                                          # nothing listens there: the Hub cannot be reached
    q = _push(["deploy", "push", str(out), "--repo-id", "someone/tiny-space"], out, HF_TOKEN="hf_not_a_token", HF_HUB_OFFLINE="0",
              HF_ENDPOINT=f"http://127.0.0.1:{port}")
    assert q.returncode == 1 and q.stdout == p.stdout, q.stderr
    assert f"could not create the Space: http://127.0.0.1:{port} cannot be reached (ConnectError" in q.stderr, q.stderr
    from modforge_nb.deploy import verify_bundle
    assert verify_bundle(out) == [] and sorted(p.name for p in out.parent.iterdir()) == before

def test_space_push_offline_keeps_a_complete_bundle(bundle, tmp_path):
    run, _, _ = bundle
    out = tmp_path / "pushed"
    p = _push(["deploy", "space", str(run), str(out), "--push", "--repo-id", "someone/tiny-space", "--private"], out)
    assert p.returncode == 1 and "; private; sdk docker)" in p.stdout and "run it here:" in p.stdout, p.stdout[-2000:]
    assert "offline: HF_HUB_OFFLINE is set" in p.stderr and "no token: $HF_TOKEN is not set" in p.stderr, p.stderr
    from modforge_nb.deploy import verify_bundle
    assert verify_bundle(out) == [] and sorted(x.name for x in tmp_path.iterdir()) == ["pushed"]   # whole, and nothing half-written
