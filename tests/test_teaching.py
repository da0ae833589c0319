"""Failure distillation's filters against a real local OpenAI-compatible HTTP server: a scripted backend (deterministic
answers, so every filter is hit on purpose) behind the same server `modforge teacher serve` runs. Contamination is
dropped and counted, arithmetic is recomputed, a wrong number is rejected even when a judge would like it, the judge
keeps only what reaches the bar, tier 2 gets only what tier 1 failed. Plus the sandbox's refusals."""
import re
import pytest
from modforge_nb.config import TeacherTier
from modforge_nb.teachers import TeacherClient
from modforge_nb.teacher_server import serve_in_thread
from modforge_nb.sftdata import ContaminationIndex, eval_texts, load_sft, verify_example
from modforge_nb.distill import distill
from modforge_nb.tasks import read_task
from modforge_nb.sandbox import run_python

EVAL_Q = read_task("arith_gen")[0]["question"]          # an evaluation item, word for word

class Scripted:
    "A teacher whose answer depends on the request: tier 1 writes one of each kind of example; tier 2 always writes a good one."
    def __init__(self, name): self.name, self.calls = name, 0
    def complete(self, messages, max_tokens=256, temperature=0.0):
        self.calls += 1
        text = messages[-1]["content"]
        if text.startswith("You grade"):                                  # the judge's rubric
            return ("Score: 9" if "capital" in text else "Score: 3"), 50, 3
        j = int(re.search(r"new question number (\d+)", text).group(1))
        if self.name == "t2": return f"Question: What is {j} + 1000?\nAnswer: {j + 1000}", 40, 10
        return [f"Question: {EVAL_Q}\nAnswer: 1",                          # contaminated
                "Question: What is 41 * 3?\nAnswer: 41 * 3 = 124",           # verifier rejects (123)
                "Question: What is 41 * 3?\nAnswer: 41 * 3 = 123",           # verified
                "Question: What is the capital of Peru?\nAnswer: Lima",      # judged 9: kept
                "Question: Name a colour.\nAnswer: blue",                    # judged 3: below the bar
                "no format at all"][j - 1], 40, 10

@pytest.fixture
def servers():
    t1, t2 = Scripted("t1"), Scripted("t2")
    (s1, u1), (s2, u2) = serve_in_thread(t1), serve_in_thread(t2)
    yield (t1, u1), (t2, u2)
    for s in (s1, s2): s.shutdown(); s.server_close()

def _client(servers, tmp_path):
    (_, u1), (_, u2) = servers
    tiers = [TeacherTier(name="t1", base_url=u1, model="t1"), TeacherTier(name="t2", base_url=u2, model="t2")]
    c = TeacherClient(tiers, tmp_path / "cache", tmp_path / "ledger.json", step="1C", concurrency=1)
    c.order, c.judge = ["t1", "t2"], "t1"
    return c

def test_distill_filters_and_cascade(servers, tmp_path):
    failures = [{"question": f"What is {a} + 7?", "expected": a + 7} for a in range(5)]
    out = distill(_client(servers, tmp_path), {0: failures}, per_cluster=6, shots=2, index=ContaminationIndex(eval_texts()), bar=8)
    t1 = out["tiers"]["t1"]
    assert t1["asked"] == 6 and t1["settled"] == 2
    assert t1["reasons"] == {"contaminated": 1, "verifier_rejected": 1, "verified": 1, "judge_pass": 1, "judge_below_bar": 1, "unparseable": 1}
    assert out["tiers"]["t2"]["asked"] == 4 and out["tiers"]["t2"]["settled"] == 4   # only tier 1's failures went on
    kept = {e["messages"][0]["content"]: e for e in out["examples"]}
    assert EVAL_Q not in kept and kept["What is 41 * 3?"]["messages"][1]["content"].endswith("123")
    assert kept["What is 41 * 3?"]["verified"] is True and kept["What is the capital of Peru?"]["judge_score"] == 9
    assert len(out["examples"]) == 6 and {e["tier"] for e in out["examples"]} == {"t1", "t2"}
    # the same again: every answer (and judgement) from the cache, nothing sent
    (t1s, _), (t2s, _) = servers; sent = t1s.calls + t2s.calls
    c = _client(servers, tmp_path)
    again = distill(c, {0: failures}, per_cluster=6, shots=2, index=ContaminationIndex(eval_texts()), bar=8)
    assert t1s.calls + t2s.calls == sent and c.stats["new"] == 0 and c.stats["cache_hits"] > 0
    assert [e["messages"] for e in again["examples"]] == [e["messages"] for e in out["examples"]]

def test_contamination_filter():
    idx = ContaminationIndex(eval_texts(), n=8)
    assert idx.contaminated(EVAL_Q) and idx.contaminated("  " + EVAL_Q.upper())          # normalised exact match
    he = eval_texts()[-1]                                                                 # a HumanEval prompt
    words = he.split(); assert idx.contaminated("Here: " + " ".join(words[len(words) // 2: len(words) // 2 + 12]))
    assert not idx.contaminated("What is 1234 + 4321?")
    assert not idx.contaminated("What does this Python code print?\n```python\nprint(40 + 2)\n```")   # a shared template is not overlap
    sft = load_sft()
    assert len(sft) == 600 and not any(idx.contaminated(e["messages"][0]["content"]) for e in sft)
    assert all(verify_example(e) for e in sft[::25])

def test_sandbox_timeout_and_escapes_refused(tmp_path):
    r = run_python("while True: pass", timeout_s=1)
    assert r.status == "timeout" and r.seconds < 5
    net = run_python("import socket\ns = socket.create_connection(('127.0.0.1', 9), timeout=1)")
    assert net.status == "failed" and ("refused" in net.stderr or "PermissionError" in net.stderr)
    outside = tmp_path / "escaped.txt"
    w = run_python(f"open({str(outside)!r}, 'w').write('x')")
    assert w.status == "failed" and "outside the sandbox" in w.stderr and not outside.exists()
    rd = run_python("print(open('/etc/hostname').read())")
    assert rd.status == "failed" and "refused" in rd.stderr
    ok = run_python("open('inside.txt', 'w').write('fine'); print(open('inside.txt').read())")
    assert ok.status == "passed" and ok.stdout.strip() == "fine"
