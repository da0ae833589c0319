"""The teacher client against a real local OpenAI-compatible HTTP server (the fixture model behind it): cache hits and
misses, retries on a server that fails then succeeds, the budget stop, the dry-run estimate, the ledger. Then the
server against hostile input over raw HTTP: each malformed body is the right OpenAI error object, nothing reaches the
model until the request is known to fit, a 5 MB body is refused from its headers, an unexpected exception is a 500 and
the server keeps serving, and `modforge teacher serve` on a taken port is one line, not a traceback."""
import http.client, json, socket, threading, time, pytest
from urllib.parse import urlsplit
from modforge_nb.config import ModelSection, TeacherTier
from modforge_nb.models import materialize_model
from modforge_nb.teacher_server import LocalTeacher, serve_in_thread
from modforge_nb.teachers import TeacherClient, BudgetExceeded
from conftest import ROOT, modforge

@pytest.fixture(scope="module")
def teacher():
    return LocalTeacher(materialize_model(ModelSection(source="fixture"), ROOT / "cache"), name="fixture")

@pytest.fixture
def server(teacher):
    srv, url = serve_in_thread(teacher)
    yield srv, url
    srv.shutdown(); srv.server_close()

def _client(url, tmp_path, **kw):
    tier = TeacherTier(name="t1", base_url=url, model="fixture", price_in_per_m=1000.0, price_out_per_m=2000.0)
    return TeacherClient([tier], tmp_path / "cache", tmp_path / "ledger.json", step="test", backoff_s=0.01, **kw)

MSG = [{"role": "user", "content": "What is 2 + 3?"}]

def test_models_endpoint_and_cache(server, tmp_path):
    srv, url = server
    from openai import OpenAI
    assert [m.id for m in OpenAI(base_url=url, api_key="x").models.list().data] == ["fixture"]
    c = _client(url, tmp_path)
    a = c.chat("t1", MSG, max_tokens=8)
    b = c.chat("t1", MSG, max_tokens=8)
    assert not a["cached"] and b["cached"] and a["text"] == b["text"] and srv.state["served"] == 1
    c.chat("t1", MSG, max_tokens=9)                                  # other parameters: a miss
    assert srv.state["served"] == 2
    e = json.loads((tmp_path / "ledger.json").read_text())["entries"]["test/t1"]
    assert e["requests"] == 3 and e["cache_hits"] == 1 and e["tokens_out"] > 0 and e["cost"] > 0

def test_retries_a_server_that_fails_then_succeeds(teacher, tmp_path):
    srv, url = serve_in_thread(teacher, fail_first=3)
    try:
        out = _client(url, tmp_path, max_retries=5).chat("t1", MSG, max_tokens=4)
        assert out["text"] is not None and srv.state["fail"] == 0 and srv.state["served"] == 1
        assert json.loads((tmp_path / "ledger.json").read_text())["entries"]["test/t1"]["retries"] == 3
        srv.state["fail"] = 10
        from openai import APIStatusError
        with pytest.raises(APIStatusError): _client(url, tmp_path / "b", max_retries=2).chat("t1", MSG, max_tokens=5)
    finally: srv.shutdown(); srv.server_close()

def test_budget_stops_cleanly_and_dry_run(server, tmp_path):
    srv, url = server
    batch = [[{"role": "user", "content": f"Say {i}."}] for i in range(6)]
    c = _client(url, tmp_path, budget_usd=0.05, concurrency=1)
    est = c.estimate("t1", batch, max_tokens=8)
    assert est["requests"] == 6 and est["cached"] == 0 and est["max_cost"] > 0.05
    out, reason = c.chat_many("t1", batch, max_tokens=8)
    sent = [o for o in out if o is not None]
    assert reason and "budget" in reason and 0 < len(sent) < 6 and out[len(sent):] == [None] * (6 - len(sent))
    assert c.ledger.spent() <= 0.05
    with pytest.raises(BudgetExceeded): c.chat("t1", [{"role": "user", "content": "one more"}], max_tokens=8)
    # a re-run of what was paid for costs nothing
    again, _ = _client(url, tmp_path, budget_usd=0.05).chat_many("t1", batch[:len(sent)], max_tokens=8)
    assert all(o["cached"] for o in again)

def test_bad_request_is_an_error_not_a_retry(server, tmp_path):
    srv, url = server
    from openai import BadRequestError
    with pytest.raises(BadRequestError): _client(url, tmp_path).chat("t1", [], max_tokens=4)


# --- the server against hostile input (raw HTTP: no client-side checks in the way) ---

def _raw(url, body: bytes | None, headers: dict | None = None, path: str = "/v1/chat/completions") -> tuple[int, dict]:
    "POST `body` as is (Content-Length from its size unless `headers` say otherwise): (status, JSON body)."
    u = urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        c.putrequest("POST", path)
        hs = {"Content-Type": "application/json", **({} if body is None else {"Content-Length": str(len(body))}), **(headers or {})}
        for k, v in hs.items(): c.putheader(k, v)
        c.endheaders(body)
        r = c.getresponse(); return r.status, json.loads(r.read())
    finally: c.close()

def _socket_post(url, head_extra: bytes = b"", body_chunks=(), length: int | None = None, pause_s: float = 0.0) -> tuple[int, dict]:
    "A POST written to a bare socket (headers, then the chunks); reads the answer to EOF: (status, JSON body)."
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
                  (b"Content-Length: %d\r\n" % length if length is not None else b"") + head_extra + b"\r\n")
        try:
            for ch in body_chunks: s.sendall(ch); time.sleep(pause_s)
            s.shutdown(socket.SHUT_WR)                         # done sending: the server's drain ends at once
        except OSError: pass                                   # the server may stop reading once it has answered
        data = b""
        while chunk := s.recv(65536): data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)

def _j(d) -> bytes: return json.dumps(d).encode()

GOOD = {"model": "fixture", "messages": MSG, "max_tokens": 4}
HOSTILE = [  # (what, body, status, code, param)
    ("message without role", _j({**GOOD, "messages": [{"content": "hi"}]}), 400, "missing_required_parameter", "messages[0].role"),
    ("message without content", _j({**GOOD, "messages": [{"role": "user"}]}), 400, "missing_required_parameter", "messages[0].content"),
    ("message not an object", _j({**GOOD, "messages": ["hi"]}), 400, "invalid_type", "messages[0]"),
    ("role 'wizard'", _j({**GOOD, "messages": [{"role": "wizard", "content": "hi"}]}), 400, "invalid_value", "messages[0].role"),
    ("content an object", _j({**GOOD, "messages": [{"role": "user", "content": {"a": 1}}]}), 400, "invalid_type", "messages[0].content"),
    ("messages empty", _j({**GOOD, "messages": []}), 400, "empty_array", "messages"),
    ("max_tokens 'lots'", _j({**GOOD, "max_tokens": "lots"}), 400, "invalid_value", "max_tokens"),
    ("max_tokens -1", _j({**GOOD, "max_tokens": -1}), 400, "invalid_value", "max_tokens"),
    ("max_tokens 10**6 (over the cap)", _j({**GOOD, "max_tokens": 10**6}), 400, "invalid_value", "max_tokens"),
    ("temperature 'hot'", _j({**GOOD, "temperature": "hot"}), 400, "invalid_value", "temperature"),
    ("temperature 5", _j({**GOOD, "temperature": 5}), 400, "invalid_value", "temperature"),
    ("stream true", _j({**GOOD, "stream": True}), 400, "unsupported_value", "stream"),
    ("n 3", _j({**GOOD, "n": 3}), 400, "unsupported_value", "n"),
    ("unknown parameter 'tools'", _j({**GOOD, "tools": []}), 400, "unknown_parameter", "tools"),
    ("no model", _j({"messages": MSG}), 400, "missing_required_parameter", "model"),
    ("JSON array body", b"[1, 2, 3]", 400, "invalid_type", None),
    ("invalid JSON", b'{"model": "fixture", "messages": [', 400, "invalid_json", None),
    ("NaN in JSON", b'{"model": "fixture", "messages": [], "temperature": NaN}', 400, "invalid_json", None),
    ("non-UTF-8 body", b'{"model": "fixture\xff\xfe"}', 400, "invalid_encoding", None),
    ("JSON nested 200,000 deep", b"[" * 200_000, 400, "invalid_json", None),
    ("empty body", b"", 400, "invalid_json", None),
    ("unknown model", _j({**GOOD, "model": "gpt-4o"}), 404, "model_not_found", "model"),
    ("prompt longer than the context (2,048)", _j({**GOOD, "messages": [{"role": "user", "content": "hello " * 3000}]}),
     400, "context_length_exceeded", "messages"),
    ("max_tokens past the context", _j({**GOOD, "max_tokens": 2040}), 400, "context_length_exceeded", "messages"),
]

@pytest.mark.parametrize("what,body,status,code,param", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_body_is_an_openai_error(server, what, body, status, code, param):
    srv, url = server
    s, b = _raw(url, body)
    assert (s, b["error"]["code"], b["error"]["param"]) == (status, code, param), b
    assert set(b) == {"error"} and set(b["error"]) == {"message", "type", "param", "code"}
    assert b["error"]["type"] == "invalid_request_error" and isinstance(b["error"]["message"], str) and b["error"]["message"]
    assert srv.state["served"] == 0 and srv.state["rejected"] == 1     # refused before any generation

def test_headers_that_cannot_be_trusted(server):
    srv, url = server
    assert _socket_post(url)[0] == 411                                               # no Content-Length
    assert _socket_post(url, b"Transfer-Encoding: chunked\r\n", [b"0\r\n\r\n"])[1]["error"]["code"] == "length_required"
    assert _raw(url, _j(GOOD), {"Content-Length": "-5"})[1]["error"]["code"] == "invalid_content_length"
    assert _raw(url, b"{}", path="/v1/nope")[1]["error"]["code"] == "unknown_url"
    assert srv.state["served"] == 0

def test_good_request_and_unknown_model_with_the_openai_client(server):
    srv, url = server
    from openai import OpenAI, NotFoundError
    c = OpenAI(base_url=url, api_key="x", max_retries=0)
    r = c.chat.completions.create(model="fixture", messages=MSG, max_tokens=4)
    assert r.model == "fixture" and isinstance(r.choices[0].message.content, str) and r.usage.prompt_tokens > 5
    assert r.usage.completion_tokens <= 4 and srv.state["served"] == 1
    with pytest.raises(NotFoundError) as e: c.chat.completions.create(model="gpt-4o", messages=MSG, max_tokens=4)
    assert e.value.status_code == 404 and e.value.code == "model_not_found" and e.value.param == "model"
    assert c.models.retrieve("fixture").id == "fixture"
    with pytest.raises(NotFoundError): c.models.retrieve("gpt-4o")

def test_5mb_body_is_413_at_once_and_others_are_served(server):
    srv, url = server
    from openai import OpenAI
    t0 = time.monotonic()
    s, b = _socket_post(url, length=5_000_000)        # headers only: the answer needs no byte of the body
    assert (s, b["error"]["code"]) == (413, "request_too_large") and time.monotonic() - t0 < 3
    out, started = {}, threading.Event()
    def upload():                                      # the whole 5 MB, trickled over ~1 s
        started.set(); t = time.monotonic()
        out["r"] = _socket_post(url, length=5_000_000, body_chunks=[b"x" * 62_500] * 80, pause_s=0.01)
        out["s"] = time.monotonic() - t
    th = threading.Thread(target=upload); th.start(); started.wait()
    r = OpenAI(base_url=url, api_key="x", max_retries=0).chat.completions.create(model="fixture", messages=MSG, max_tokens=4)
    th.join(30)
    assert r.choices[0].message.content is not None and out["r"][0] == 413 and out["s"] < 5, out
    assert srv.state["served"] == 1 and srv.state["rejected"] == 2

def test_a_refused_request_does_not_wait_for_the_model(teacher, server):
    srv, url = server
    with teacher.lock:                                 # as if a long generation were running
        t0 = time.monotonic()
        s, b = _raw(url, _j({**GOOD, "messages": [{"role": "user", "content": "hello " * 3000}]}))
        assert (s, b["error"]["code"]) == (400, "context_length_exceeded") and time.monotonic() - t0 < 5
        assert _raw(url, _j({**GOOD, "model": "other"}))[0] == 404

class _Flaky:
    "The fixture teacher, except that its first `complete` raises: a failure the server did not foresee."
    def __init__(self, inner):
        self.inner, self.name, self.context_length, self.count_tokens, self.failed = inner, inner.name, inner.context_length, inner.count_tokens, False
    def complete(self, *a, **kw):
        if not self.failed: self.failed = True; raise RuntimeError("injected failure")
        return self.inner.complete(*a, **kw)

def test_unexpected_exception_is_500_json_and_the_server_keeps_serving(teacher):
    srv, url = serve_in_thread(_Flaky(teacher))
    try:
        s, b = _raw(url, _j(GOOD))
        assert s == 500 and b["error"]["type"] == "server_error" and "injected failure" in b["error"]["message"]
        assert set(b["error"]) == {"message", "type", "param", "code"} and srv.state["errors"] == 1
        s, b = _raw(url, _j(GOOD))
        assert s == 200 and b["choices"][0]["message"]["role"] == "assistant" and srv.state["served"] == 1
    finally: srv.shutdown(); srv.server_close()

def test_busy_port_is_one_line_not_a_traceback():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0)); taken.listen(1); port = taken.getsockname()[1]
        t0 = time.monotonic()
        p = modforge("teacher", "serve", "--config", "configs/smoke.yaml", "--port", port, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout, p.stderr
    assert p.stderr.strip() == f"modforge: error: port {port} on 127.0.0.1 is in use (pick another with --port)", p.stderr
    assert time.monotonic() - t0 < 60                  # refused before any model is loaded
