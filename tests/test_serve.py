"""`modforge serve` for real: uvicorn on loopback over a tiny served system (the fixture model as an F16 GGUF, its
Q8_0 as mode turbo, one random GGUF LoRA modifier, `reasoning`; no router), driven by the official `openai` client: a
chat, a stream with usage, a modifier forced by `model`, each mode, an unknown model, malformed and oversized bodies
(the server keeps serving), a client gone mid-stream, bad and missing keys, a modifier outside the key's tier, the rate
limit, hot-swap under traffic, the Prometheus counters and the SQLite log (the chat UI: tests/test_chat_ui.py, in headless Chromium).
Last, the CLI in its own process over a run folder holding the same files (a turbo mode, the first server as its
escalation tier): its start message, three answers, kill -9, and all three requests are in the log."""
import http.client, json, os, shutil, signal, socket, sqlite3, subprocess, time
from pathlib import Path
from urllib.parse import urlsplit
import openai, pytest
from conftest import MODFORGE, ROOT, env, hand_run

MSG = [{"role": "user", "content": "What is 2 + 2?"}]

@pytest.fixture(scope="module")
def served():
    from modforge_nb.serve_backend import tiny_served
    return tiny_served(ROOT / "cache")            # built once (~40 s), then reused from the cache

@pytest.fixture(scope="module")
def backend(served):
    "{mode: backend}: balanced (the F16 base) and turbo (its Q8_0), both with the modifier."
    from modforge_nb.serve_backend import load_backends
    bs = load_backends(served, n_ctx=512)
    yield bs
    for b in bs.values(): b.close()

@pytest.fixture(scope="module")
def secrets():
    from modforge_nb.serve_access import Key, new_key
    out, keys = {}, {}
    for name, tier, extra in [("free", "free", {"rpm": 2}), ("ent", "enterprise", {}), ("ops", "admin", {})]:
        out[name], e = new_key(tier, **extra)
        keys[e["sha256"]] = Key(name, e["sha256"], tier, rpm=e.get("rpm"))
    return out, keys

def _start(app):
    from modforge_nb.server import ServerThread
    return ServerThread(app)

@pytest.fixture(scope="module")
def open_server(served, backend, tmp_path_factory):
    from modforge_nb.server import make_app
    app = make_app(served, backend, log=tmp_path_factory.mktemp("open") / "requests.sqlite")
    with _start(app) as st: yield app, st.url

@pytest.fixture(scope="module")
def keyed_server(served, backend, secrets, tmp_path_factory):
    from modforge_nb.server import make_app
    app = make_app(served, backend, keys=secrets[1], log=tmp_path_factory.mktemp("keyed") / "requests.sqlite")
    with _start(app) as st: yield app, st.url

def client(url, key="none"): return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)

def raw_post(url, body: bytes, path="/v1/chat/completions"):
    u = urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse(); out = (r.status, r.getheader("Content-Type"), r.read()); c.close()
    return out

def test_chat_and_forced_modifier(open_server):
    app, url = open_server
    t0 = time.perf_counter()
    r = client(url).chat.completions.create(model="tiny", messages=MSG, max_tokens=8, temperature=0)
    secs = time.perf_counter() - t0
    assert r.object == "chat.completion" and r.model == "tiny" and isinstance(r.choices[0].message.content, str)
    assert r.usage.prompt_tokens > 5 and 1 <= r.usage.completion_tokens <= 8
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.modforge["route"] == "no router: the base" and r.modforge["modifier"] is None and r.modforge["latency_s"] > 0
    m = client(url).chat.completions.create(model="reasoning", messages=MSG, max_tokens=8, temperature=0)
    assert m.model == "reasoning" and m.modforge["modifier"] == "reasoning" and m.modforge["route"] == "named by model"
    assert m.choices[0].message.content != r.choices[0].message.content        # the random LoRA changes the answer
    again = client(url).chat.completions.create(model="tiny", messages=MSG, max_tokens=8, temperature=0)
    assert again.choices[0].message.content == r.choices[0].message.content    # back on the base: the cache was reset
    print(f"one 8-token request on the fixture, over HTTP: {secs * 1000:.0f} ms")
    assert [(x.id, x.parent) for x in client(url).models.list()] == [("tiny", None), ("tiny:turbo", "tiny"), ("reasoning", "tiny")]

def test_sampling_seed(open_server):
    "Without a seed each request is a new sample (no fixed default seed); a given seed gives the same text again."
    _, url = open_server
    say = lambda **kw: client(url).chat.completions.create(model="tiny", messages=MSG, max_tokens=12, temperature=1.5, **kw).choices[0].message.content
    unseeded = {say() for _ in range(4)}
    assert len(unseeded) > 1, unseeded
    assert say(seed=7) == say(seed=7)

def test_each_mode(open_server):
    _, url = open_server
    say = lambda **kw: client(url).chat.completions.create(messages=MSG, max_tokens=6, temperature=0, **kw)
    for model, extra, mode, modifier in [("tiny", None, "balanced", None), ("tiny:turbo", None, "turbo", None),
                                         ("reasoning", {"mode": "turbo"}, "turbo", "reasoning")]:
        r = say(model=model, extra_body=extra)
        assert (r.modforge["mode"], r.modforge["modifier"]) == (mode, modifier) and r.usage.completion_tokens >= 1
    with pytest.raises(openai.NotFoundError): say(model="tiny:max")

def test_stream_with_usage(open_server):
    _, url = open_server
    whole = client(url).chat.completions.create(model="reasoning", messages=MSG, max_tokens=8, temperature=0)
    chunks = list(client(url).chat.completions.create(model="reasoning", messages=MSG, max_tokens=8, temperature=0, stream=True,
                                                      stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == whole.usage.completion_tokens
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens and last.modforge["modifier"] == "reasoning"
    status, ctype, body = raw_post(url, json.dumps({"model": "tiny", "messages": MSG, "max_tokens": 4, "stream": True,
                                                     "stream_options": {"include_usage": True}}).encode())
    events = [l for l in body.decode().split("\n") if l]
    assert status == 200 and ctype.startswith("text/event-stream") and events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["usage"]["completion_tokens"] <= 4

def _tiny_router(folder):
    """6A's own Router: a TF-IDF one fitted on two template families (reasoning puzzles, general chat), saved as 6A does.
    Its modifier map is empty, as when 6A runs before the modifiers are built (Phase 2's always are)."""
    from modforge_nb.router import fit_router, save_router
    people, things = ["Tom", "Ana", "Raj", "Mei", "Olu", "Ida"], ["apples", "coins", "books", "pens", "cards"]
    puzzles = [(f"If {p} has {i} {t} and gets {j} more, how many {t} does {p} have?", "reasoning", f"r{k % 6}")
               for k, (p, t, i, j) in enumerate((p, t, i, j) for p in people for t in things for i, j in ((2, 3), (5, 7)))]
    chats = [(f"{w} {x}", "general", f"g{k % 6}") for k, (w, x) in enumerate((w, x) for w in
             ["Tell me a joke about", "Write a short poem about", "Say something nice about", "Describe the smell of", "Chat with me about"]
             for x in ["cats", "the sea", "autumn", "coffee", "trains", "music"])]
    texts, labels, groups = map(list, zip(*(puzzles + chats)))
    router, _ = fit_router("tfidf", texts, labels, ["reasoning", "general"], groups, modifiers={})
    return save_router(router, folder)

PUZZLE = "If Zoe has 4 pens and gets 6 more, how many pens does Zoe have?"

def test_a_real_router_picks_the_modifier(served, backend, tmp_path):
    """The server picks the modifier it serves for the routed domain (the router's map is empty), at 6C's routing-only
    threshold (not the joint one); the log's routed answers, rated through /v1/feedback, feed adaptive.update_thresholds."""
    import dataclasses
    from modforge_nb.adaptive import update_thresholds
    from modforge_nb.serve_access import logged_interactions
    from modforge_nb.server import make_app
    folder = _tiny_router(tmp_path / "router")
    thresholds = {"routing": 0.99, "routing_only": {"routing": 0.6}, "escalation": {"signal": "agreement", "threshold": 0.5}}
    app = make_app(dataclasses.replace(served, router=folder, modifiers=dict(served.modifiers), thresholds=thresholds), backend,
                   log=tmp_path / "requests.sqlite")
    assert type(app.state.router.obj).__name__ == "Router" and app.state.threshold == 0.6
    with _start(app) as st:
        ask = lambda text: client(st.url).chat.completions.create(model="tiny", messages=[{"role": "user", "content": text}], max_tokens=4)
        r = ask(PUZZLE)
        assert (r.modforge["domain"], r.modforge["modifier"], r.model) == ("reasoning", "reasoning", "reasoning"), r.modforge
        assert r.modforge["confidence"] >= 0.6 and r.modforge["route"] == "routed (confidence >= 0.60)"
        g = ask("Tell me a joke about dogs")
        assert (g.modforge["domain"], g.modforge["modifier"], g.model) == ("general", None, "tiny"), g.modforge
        client(st.url).chat.completions.create(model="reasoning", messages=MSG, max_tokens=2)    # named: no routing decision
        status, _, _ = raw_post(st.url, json.dumps({"id": r.id, "rating": -1}).encode(), "/v1/feedback"); assert status == 200
    its = logged_interactions(tmp_path / "requests.sqlite")
    assert its == [{"domain": "reasoning", "confidence": r.modforge["confidence"], "escalated": False, "feedback": "down"},
                   {"domain": "general", "confidence": g.modforge["confidence"], "escalated": False, "feedback": None}], its
    new, report = update_thresholds({"reasoning": 0.6, "general": 0.6}, its)
    assert new == {"reasoning": 0.6, "general": 0.6} and report["reasoning"]["evidence"] == 1   # too little evidence to move

def test_route_cli_names_the_served_modifier(served, tmp_path):
    "`modforge route RUN`: the modifier the run serves for the routed domain (its 3x step), though the router's map is empty."
    from modforge_nb.fsutil import artifact_digest
    from modforge_nb.runs import Run
    run = Run.open(hand_run(tmp_path, served))
    n, sha = artifact_digest(_tiny_router(run.path / "6A" / "router"))
    run.update(lambda m: m["steps"].__setitem__("6A", {"status": "done", "kind": "6A", "artifacts": {"router": {"path": "6A/router", "bytes": n, "sha256": sha}}}))
    queries = "".join(json.dumps({"text": t}) + "\n" for t in (PUZZLE, "Tell me a joke about dogs"))
    p = subprocess.run([str(MODFORGE), "route", str(run.path), "--jsonl", "-"], input=queries, capture_output=True, text=True,
                       env=env(), cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    got = [json.loads(l) for l in p.stdout.splitlines()]
    assert [(x["domain"], x["modifier"]) for x in got] == [("reasoning", "reasoning"), ("general", None)], got

def test_refusals_keep_serving(open_server):
    _, url = open_server
    with pytest.raises(openai.NotFoundError) as e: client(url).chat.completions.create(model="gpt-4", messages=MSG)
    assert e.value.body["code"] == "model_not_found"
    for body, status, code, *path in [(b"{not json", 400, "invalid_json"), (b'{"model": "tiny", "messages": []}', 400, "empty_array"),
                                      (json.dumps({"model": "tiny", "messages": MSG, "max_tokens": "x"}).encode(), 400, "invalid_value"),
                                      (json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "go " * 600}]}).encode(), 400,
                                       "context_length_exceeded"),
                                      (b"x" * (10 << 20), 413, "request_too_large"),
                                      (b"x" * (2 << 20), 413, "request_too_large", "/v1/feedback")]:   # feedback takes 64 KiB
        got, ctype, raw = raw_post(url, body, *path)
        assert (got, ctype, json.loads(raw)["error"]["code"]) == (status, "application/json", code), raw[:300]
        ok = client(url).chat.completions.create(model="tiny", messages=MSG, max_tokens=2)   # and the next request is served
        assert ok.usage.completion_tokens >= 1

def test_client_gone_mid_stream_frees_the_model(open_server):
    app, url = open_server
    u = urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("POST", "/v1/chat/completions", body=json.dumps({"model": "tiny", "messages": MSG, "max_tokens": 450, "stream": True,
                                                                "temperature": 1.0, "seed": 1}))
    r = c.getresponse(); assert r.status == 200 and r.fp.readline()   # the first chunk arrived: generation is under way
    c.sock.close(); c.close()
    t0 = time.perf_counter()
    assert client(url).chat.completions.create(model="tiny", messages=MSG, max_tokens=2).usage.completion_tokens >= 1
    assert time.perf_counter() - t0 < 5                                # not after the abandoned 450 tokens
    for _ in range(50):
        if any(r["status"] == 499 for r in app.state.log.rows()): break
        time.sleep(0.1)
    assert [r["error"] for r in app.state.log.rows() if r["status"] == 499] == ["the client went away mid-stream"]

def test_keys_tiers_and_rate_limit(keyed_server, secrets):
    _, url = keyed_server
    sec = secrets[0]
    with pytest.raises(openai.AuthenticationError): client(url, "mf-not-a-key").chat.completions.create(model="tiny", messages=MSG)
    assert client(url, sec["ent"]).chat.completions.create(model="reasoning", messages=MSG, max_tokens=2).model == "reasoning"
    free = client(url, sec["free"])
    assert [m.id for m in free.models.list()] == ["tiny", "tiny:turbo"]       # the base, in each mode
    with pytest.raises(openai.PermissionDeniedError) as e: free.chat.completions.create(model="reasoning", messages=MSG)
    assert e.value.body["code"] == "model_not_in_tier"                                 # (this one took a token: 1 left)
    free.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
    with pytest.raises(openai.RateLimitError) as e: free.chat.completions.create(model="tiny", messages=MSG, max_tokens=2)
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 30

def test_hot_swap_during_traffic(keyed_server, secrets, served):
    import threading
    _, url = keyed_server
    ent, ops = client(url, secrets[0]["ent"]), {"Authorization": f"Bearer {secrets[0]['ops']}"}
    def admin(method, name, body=None):
        u = urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        c.request(method, f"/admin/modifiers/{name}", body=json.dumps(body) if body else None, headers=ops)
        r = c.getresponse(); out = (r.status, json.loads(r.read())); c.close(); return out
    results, stop = [], threading.Event()
    def traffic():
        while not stop.is_set():
            for model in ("tiny", "reasoning"):
                try: results.append((model, ent.chat.completions.create(model=model, messages=MSG, max_tokens=6).usage.completion_tokens))
                except openai.APIStatusError as e: results.append((model, e.status_code))
    threads = [threading.Thread(target=traffic) for _ in range(3)]
    for t in threads: t.start()
    try:
        time.sleep(0.3)
        gguf = str(served.modifiers["reasoning"]["gguf"])
        for _ in range(3):
            status, body = admin("PUT", "reasoning", {"gguf": gguf, "phase": 1}); assert status == 200 and body["replaced"] is True, body
        status, body = admin("PUT", "logic", {"gguf": gguf, "phase": 1}); assert status == 200 and body["replaced"] is False, body
        assert ent.chat.completions.create(model="logic", messages=MSG, max_tokens=3).model == "logic"
        assert admin("DELETE", "logic") == (200, {"name": "logic", "removed": True})
        with pytest.raises(openai.NotFoundError): ent.chat.completions.create(model="logic", messages=MSG, max_tokens=3)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads: t.join(60)
    bad = [r for r in results if not (isinstance(r[1], int) and 1 <= r[1] <= 6)]
    assert len(results) >= 10 and not bad, (len(results), bad[:5])
    assert [m.id for m in ent.models.list()] == ["tiny", "tiny:turbo", "reasoning"]

def test_metrics_and_log(open_server, keyed_server):
    for app, url in (open_server, keyed_server):
        u = urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port, timeout=10); c.request("GET", "/metrics")
        text = c.getresponse().read().decode(); c.close()
        db = sqlite3.connect(app.state.log.path)
        rows = db.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall(); db.close()
        for status, n in rows:        # every logged request is counted, by status
            got = sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith("modforge_requests_total{") and f'status="{status}"' in l)
            assert got == n, (status, n, got)
        assert "modforge_request_seconds_bucket" in text and 'modforge_tokens_total{kind="completion"}' in text
    statuses = dict(rows)
    assert statuses[401] == 1 and statuses[403] == 1 and statuses[429] == 1 and statuses[200] >= 2, statuses
    row = sqlite3.connect(keyed_server[0].state.log.path).execute(
        "SELECT key_name, tier, model, modifier, prompt_tokens, completion_tokens, latency_s FROM requests WHERE status = 200 LIMIT 1").fetchone()
    assert row[:4] == ("ent", "enterprise", "reasoning", "reasoning") and row[4] > 5 and row[5] >= 1 and row[6] > 0

def test_cli_serves_a_run_and_the_log_survives_kill9(served, open_server, tmp_path):
    run = hand_run(tmp_path, served)
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    p = subprocess.Popen([str(MODFORGE), "serve", str(run), "--port", str(port), "--ctx", "512",
                          "--mode", "turbo=2C/gguf-q8_0", "--escalate-to", open_server[1] + "/v1"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env(), cwd=ROOT)
    try:
        said = []
        for line in p.stdout:
            said.append(line)
            if line.startswith("OpenAI base_url"): break
        text = "".join(said)
        assert "open on loopback (no keys file)" in text and "routing: off" in text and "modifiers: reasoning (phase 1)" in text, text
        assert f"modes: balanced ({run / '2C' / 'gguf'}), turbo ({run / '2C' / 'gguf-q8_0'})" in text, text
        assert f"escalation: OpenAIBackend({open_server[1]}/v1, 'tiny')" in text, text    # its first model, asked at start
        url = f"http://127.0.0.1:{port}"
        for model in ("tinyrun", "reasoning", "tinyrun:turbo"):
            for _ in range(100):                   # the socket opens a moment after the message
                try: r = client(url).chat.completions.create(model=model, messages=MSG, max_tokens=4); break
                except openai.APIConnectionError: time.sleep(0.1)
            assert r.model == model.partition(":")[0] and r.modforge["mode"] == (model.partition(":")[2] or "balanced")
    finally:
        os.kill(p.pid, signal.SIGKILL); p.wait(10)
    rows = sqlite3.connect(run / "serve" / "requests.sqlite").execute("SELECT model, modifier, status FROM requests ORDER BY id").fetchall()
    assert rows == [("tinyrun", None, 200), ("reasoning", "reasoning", 200), ("tinyrun:turbo", None, 200)], rows

def test_lm_eval_generates_through_the_server(open_server, tmp_path):
    "lm-eval's own `local-chat-completions` model runs a generate task against the server; it scores what the server answered."
    import lm_eval
    from lm_eval.tasks import TaskManager
    app, url = open_server
    qs = [f"What is {a} + {b}?" for a, b in [(2, 2), (3, 4), (10, 5), (7, 8)]]
    said = client(url).chat.completions.create(model="reasoning", messages=[{"role": "user", "content": qs[0]}], max_tokens=8,
                                               temperature=0, stop=["\n\n"]).choices[0].message.content
    rows = [{"question": q, "answer": said if i == 0 else "no such answer"} for i, q in enumerate(qs)]  # 1 of 4 matches
    (tmp_path / "arith.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "arith.yaml").write_text(f"""task: modforge_arith
dataset_path: json
dataset_kwargs:
  data_files:
    test: {tmp_path / 'arith.jsonl'}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n\\n"]
  max_gen_toks: 8
  temperature: 0
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
""")
    n0 = len(app.state.log.rows())
    out = lm_eval.simple_evaluate(model="local-chat-completions", tasks=["modforge_arith"], apply_chat_template=True, log_samples=True,
                                  model_args=f"model=reasoning,base_url={url}/v1/chat/completions,num_concurrent=1,max_retries=1",
                                  task_manager=TaskManager(include_path=str(tmp_path)))
    test_rows = app.state.log.rows()[n0:]
    assert [(r["model"], r["modifier"], r["status"]) for r in test_rows] == [("reasoning", "reasoning", 200)] * 4, test_rows
    assert out["results"]["modforge_arith"]["exact_match,none"] == 0.25, out["results"]
    assert out["samples"]["modforge_arith"][0]["resps"][0][0] == said

def test_load_benchmark_runs_to_its_end(served, tmp_path):
    "bench/serve_load.py, bounded and small (the real numbers: bench/RESULTS.md): every request answered, the table printed."
    run = hand_run(tmp_path, served)
    p = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), str(ROOT / "bench" / "serve_load.py"), str(run), "--clients", "3",
                        "--requests", "2", "--repeats", "1", "--decode-tokens", "8", "--max-tokens", "4", "--ctx", "512"],
                       capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert "| errors | 0 |" in p.stdout and "| load: clients x requests | 3 x 2 (6 sent" in p.stdout and "server / raw" in p.stdout, p.stdout

def test_the_router_in_front_of_a_multi_lora_server(served, open_server, tmp_path):
    """`OpenAIBackend` with modifiers: ModForge (router, keys, log) in front of an OpenAI server that applies a LoRA by model
    name, as vLLM's `--lora-modules` does; here the upstream is the first test server, which follows the same convention."""
    from modforge_nb.serve_backend import OpenAIBackend
    from modforge_nb.server import make_app
    up = open_server[1]
    front = make_app(served, OpenAIBackend(up + "/v1", "tiny", modifiers={"reasoning": "reasoning"}, streaming=True),
                     log=tmp_path / "front.sqlite", ui=False)
    with _start(front) as st:
        direct = client(up).chat.completions.create(model="reasoning", messages=MSG, temperature=0, max_tokens=12).choices[0].message.content
        r = client(st.url).chat.completions.create(model="reasoning", messages=MSG, temperature=0, max_tokens=12)
        assert (r.choices[0].message.content, r.modforge["modifier"], r.usage.completion_tokens > 0) == (direct, "reasoning", True)
        chunks = list(client(st.url).chat.completions.create(model="reasoning", messages=MSG, temperature=0, max_tokens=12, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == direct and len(chunks) > 4
        with pytest.raises(openai.NotFoundError): client(st.url).chat.completions.create(model="code", messages=MSG)
    assert [r["modifier"] for r in front.state.log.rows()] == ["reasoning", "reasoning", None]
