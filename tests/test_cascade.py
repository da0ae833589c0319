"""The tier cascade against a real local OpenAI-compatible server: what tier 1 settles never reaches tier 2."""
from modforge_nb.config import TeacherTier
from modforge_nb.teachers import TeacherClient
from modforge_nb.cascade import cascade
from test_teachers import teacher  # the fixture-model teacher (module-scoped fixture)
from modforge_nb.teacher_server import serve_in_thread

def test_cascade_sends_only_failures_onward(teacher, tmp_path):
    srv, url = serve_in_thread(teacher, model_names=["t1", "t2", "t3"])   # one server answers to three tier names
    try:
        tiers = [TeacherTier(name=n, base_url=url, model=n, price_in_per_m=p, price_out_per_m=p) for n, p in (("t1", 1.0), ("t2", 10.0), ("t3", 100.0))]
        client = TeacherClient(tiers, tmp_path / "cache", tmp_path / "ledger.json", step="1C")
        items = list(range(6))
        def make(item): return [{"role": "user", "content": f"item {item}"}]
        # a check that settles even items at tier 1 and nothing later
        out = cascade(client, ["t1", "t2", "t3"], items, make, lambda i, t: i % 2 == 0, max_tokens=4)
        t1 = out["tiers"]["t1"]
        assert (t1["asked"], t1["answered"], t1["settled"], t1["share"]) == (6, 6, 3, 0.5) and t1["cost"] > 0
        assert out["tiers"]["t2"]["asked"] == 3 and out["tiers"]["t3"]["asked"] == 3 and out["unsettled"] == 3
        assert [r["tier"] for r in out["results"]] == ["t1", "t3", "t1", "t3", "t1", "t3"]
        assert out["tiers"]["t3"]["cost"] > out["tiers"]["t1"]["cost"] / 2 and out["stopped"] is None
        # a second run costs nothing: every answer is cached
        again = cascade(client, ["t1", "t2", "t3"], items, make, lambda i, t: i % 2 == 0, max_tokens=4)
        assert sum(t["cost"] for t in again["tiers"].values()) == 0
    finally: srv.shutdown(); srv.server_close()
