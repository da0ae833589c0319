"""The analytics dashboard on a real server: uvicorn on loopback over the tiny served system (the fixture model's F16
GGUF and its random LoRA modifier `reasoning`), with API keys, a stand-in router (6A is not what is tested here) and a
second, open server as the escalation tier. Requests go through the official `openai` client (routed, forced by
`model`, escalated, streamed, unknown model), thumbs up/down through POST /v1/feedback; then /dashboard (the page:
the domains and four charts, admin key only) and /dashboard.json (its counts are exactly what was sent)."""
import base64, http.client, json, time
from urllib.parse import urlsplit
import openai, pytest
from conftest import ROOT

APPLES = "If Ana has 2 apples and gets 3 more, how many apples does she have?"

class KeywordRouter:
    "Stands in for 6A: apples are reasoning (sure of it); anything else is general, unsure (under 0.8: escalated)."
    def route(self, text): return {"domain": "reasoning", "confidence": 0.95} if "apples" in text else {"domain": "general", "confidence": 0.3}

@pytest.fixture(scope="module")
def served_backend():
    from modforge_nb.serve_backend import load_backend, tiny_served
    served = tiny_served(ROOT / "cache")              # built once (~40 s), then reused from the cache
    b = load_backend(served, n_ctx=512)              # the balanced mode only: the dashboard needs no other
    yield served, b
    b.close()

@pytest.fixture(scope="module")
def secrets():
    from modforge_nb.serve_access import Key, new_key
    out, keys = {}, {}
    for name, tier in (("ent", "enterprise"), ("ops", "admin")):
        out[name], e = new_key(tier); keys[e["sha256"]] = Key(name, e["sha256"], tier)
    return out, keys

@pytest.fixture(scope="module")
def server(served_backend, secrets, tmp_path_factory):
    from modforge_nb.dashboard import add_dashboard_routes
    from modforge_nb.serve_backend import OpenAIBackend
    from modforge_nb.server import ServerThread, make_app
    served, b = served_backend
    with ServerThread(make_app(served, {"balanced": b}, ui=False)) as teacher:          # the escalation tier: open, no log
        app = make_app(served, {"balanced": b}, keys=secrets[1], log=tmp_path_factory.mktemp("dash") / "requests.sqlite",
                       router=KeywordRouter(), routing_threshold=0.8, escalation=OpenAIBackend(teacher.url + "/v1", "tiny", context_length=512))
        add_dashboard_routes(app)                  # a no-op once make_app adds the routes itself
        with ServerThread(app) as st: yield app, st.url

def get(url, path, headers=None):
    u = urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse(); out = (r.status, dict(r.getheaders()), r.read().decode()); c.close()
    return out

def post(url, path, body, key):
    u = urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    r = c.getresponse(); out = r.status; r.read(); c.close()
    return out

def test_dashboard_counts_what_was_sent(server, secrets):
    t0 = time.perf_counter()
    app, url = server
    ent, ops = secrets[0]["ent"], secrets[0]["ops"]
    client = openai.OpenAI(base_url=url + "/v1", api_key=ent, max_retries=0, timeout=60)
    ask = lambda model, text, **kw: client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}],
                                                                     max_tokens=8, temperature=0, **kw)
    routed, forced, escalated = ask("tiny", APPLES), ask("reasoning", "What is 2 + 2?"), ask("tiny", "Tell me a joke about cats")
    assert (routed.modforge["domain"], routed.modforge["modifier"]) == ("reasoning", "reasoning")
    assert forced.modforge["route"] == "named by model"
    assert (escalated.modforge["domain"], escalated.modforge["escalated"]) == ("general", True)
    chunks = list(ask("tiny", APPLES, stream=True, stream_options={"include_usage": True}))
    streamed = chunks[-1].usage
    with pytest.raises(openai.NotFoundError): ask("gpt-4o", "hi")
    for r, rating in ((routed, 1), (forced, 1), (escalated, -1)):
        assert post(url, "/v1/feedback", {"id": r.id, "rating": rating}, ent) == 200

    status, headers, body = get(url, "/dashboard")
    assert (status, json.loads(body)["error"]["code"], headers["www-authenticate"].split()[0]) == (401, "missing_api_key", "Basic")
    assert get(url, "/dashboard.json", {"Authorization": f"Bearer {ent}"})[0] == 403             # a chat key is no admin key
    status, _, body = get(url, "/dashboard.json?hours=1&bucket=minutes", {"Authorization": f"Bearer {ops}"})
    assert status == 200, body
    d = json.loads(body)
    got = {k: {f: s[f] for f in ("requests", "answered", "errors", "escalated", "feedback_up", "feedback_down")} for k, s in d["domains"].items()}
    assert got == {"reasoning": {"requests": 3, "answered": 3, "errors": 0, "escalated": 0, "feedback_up": 2, "feedback_down": 0},
                   "general": {"requests": 1, "answered": 1, "errors": 0, "escalated": 1, "feedback_up": 0, "feedback_down": 1},
                   "(none)": {"requests": 1, "answered": 0, "errors": 1, "escalated": 0, "feedback_up": 0, "feedback_down": 0}}, got
    usages = [routed.usage, forced.usage, escalated.usage, streamed]
    assert d["totals"]["prompt_tokens"] == sum(u.prompt_tokens for u in usages)
    assert d["totals"]["completion_tokens"] == sum(u.completion_tokens for u in usages)
    assert d["window"]["bucket"] == "minute" and sum(map(sum, d["series"]["requests"].values())) == 5
    assert 0 < d["totals"]["latency_p50_s"] <= d["totals"]["latency_p95_s"] < 60

    basic = "Basic " + base64.b64encode(f"admin:{ops}".encode()).decode()       # what a browser's login box sends
    status, headers, page = get(url, "/dashboard?hours=1", {"Authorization": basic})
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert page.count("<svg") == 4 and "<td>reasoning</td><td>3</td>" in page and "<td>general</td>" in page
    assert "Requests per minute, by domain" in page
    status, headers, body = get(url, "/dashboard?hours=forever", {"Authorization": basic})
    assert (status, headers["content-type"], json.loads(body)["error"]["param"]) == (400, "application/json", "hours")
    assert ask("reasoning", "Still there?").choices[0].message.content is not None          # still serving
    print(f"dashboard test: {time.perf_counter() - t0:.1f} s")
