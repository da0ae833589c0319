"""The teacher client against a real local OpenAI-compatible HTTP server (the fixture model behind it): cache hits and
misses, retries on a server that fails then succeeds, the budget stop, the dry-run estimate, the ledger."""
import json, pytest
from modforge_nb.config import ModelSection, TeacherTier
from modforge_nb.models import materialize_model
from modforge_nb.teacher_server import LocalTeacher, serve_in_thread
from modforge_nb.teachers import TeacherClient, BudgetExceeded
from conftest import ROOT

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
