"""The second backend, transformers + peft (`modforge_nb.peft_backend`), behind the real server on loopback, driven by the
official `openai` client: a chat, a stream with usage, a modifier forced by `model`, a stop string, a prompt over the
context, hot-swap through the admin endpoint (which names GGUF files: the PEFT folder beside each is loaded). Then the
point of a second backend: its greedy answers, base and modifier, are llama.cpp's on the F16 GGUF of the same weights."""
import http.client, json
from urllib.parse import urlsplit
import openai, pytest
from conftest import ROOT

MSG = [{"role": "user", "content": "What is 2 + 2?"}]
PROMPTS = ["What is 2 + 2?", "Say hello.", "Name three colors.", "Write a haiku about the sea.", "What is the capital of France?",
           "Translate 'cat' to French.", "Count to five.", "Why is the sky blue?"]

@pytest.fixture(scope="module")
def served():
    from modforge_nb.serve_backend import tiny_served
    return tiny_served(ROOT / "cache")            # the fixture as an F16 GGUF + the `reasoning` LoRA (GGUF and PEFT), cached

@pytest.fixture(scope="module")
def tb(served):
    from modforge_nb.peft_backend import load_transformers_backend
    b = load_transformers_backend(served, n_ctx=512)    # the served F16 GGUF dequantized, + the PEFT adapter
    yield b
    b.close()

@pytest.fixture(scope="module")
def keys():
    from modforge_nb.serve_access import Key, new_key
    out, table = {}, {}
    for name, tier in [("ent", "enterprise"), ("ops", "admin")]:
        out[name], e = new_key(tier)
        table[e["sha256"]] = Key(name, e["sha256"], tier)
    return out, table

@pytest.fixture(scope="module")
def server(served, tb, keys, tmp_path_factory):
    from modforge_nb.server import ServerThread, make_app
    app = make_app(served, {"balanced": tb}, keys=keys[1], log=tmp_path_factory.mktemp("peft") / "requests.sqlite", ui=False)
    with ServerThread(app) as st: yield app, st.url

def client(url, key): return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=60)

def test_chat_and_forced_modifier(server, keys, tb):
    app, url = server
    c = client(url, keys[0]["ent"])
    r = c.chat.completions.create(model="tiny", messages=MSG, max_tokens=8, temperature=0)
    assert r.model == "tiny" and r.modforge["modifier"] is None and r.modforge["route"] == "no router: the base"
    assert r.usage.prompt_tokens == tb.count_tokens(MSG) and r.usage.completion_tokens == 8 and r.choices[0].finish_reason == "length"
    m = c.chat.completions.create(model="reasoning", messages=MSG, max_tokens=8, temperature=0)
    assert m.model == "reasoning" and m.modforge["modifier"] == "reasoning" and m.modforge["route"] == "named by model"
    assert m.choices[0].message.content != r.choices[0].message.content           # the random LoRA changes the answer
    assert c.chat.completions.create(model="tiny", messages=MSG, max_tokens=8, temperature=0).choices[0].message.content \
        == r.choices[0].message.content                                             # and the base's comes back
    assert [(x.id, x.parent) for x in c.models.list()] == [("tiny", None), ("reasoning", "tiny")]   # no turbo: one backend

def test_stream_with_usage(server, keys):
    _, url = server
    c = client(url, keys[0]["ent"])
    whole = c.chat.completions.create(model="reasoning", messages=MSG, max_tokens=10, temperature=0)
    chunks = list(c.chat.completions.create(model="reasoning", messages=MSG, max_tokens=10, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    pieces = [ch.choices[0].delta.content for ch in chunks if ch.choices and ch.choices[0].delta.content]
    assert "".join(pieces) == whole.choices[0].message.content and len(pieces) > 1
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump(include={"prompt_tokens", "completion_tokens"}) == \
        whole.usage.model_dump(include={"prompt_tokens", "completion_tokens"})

def test_stop_context_and_seed(server, keys):
    _, url = server
    c = client(url, keys[0]["ent"])
    say = lambda **kw: c.chat.completions.create(model="reasoning", messages=MSG, max_tokens=10, **kw)
    full = say(temperature=0).choices[0].message.content
    cut = say(temperature=0, stop=[full[4:7]])
    assert cut.choices[0].message.content == full[:full.find(full[4:7])] and cut.choices[0].finish_reason == "stop"
    assert cut.usage.completion_tokens < 10                                          # decoding ended at the stop string
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "word " * 600}], max_tokens=4)
    assert e.value.body["code"] == "context_length_exceeded"
    assert say(temperature=1.5, seed=7).choices[0].message.content == say(temperature=1.5, seed=7).choices[0].message.content
    assert len({say(temperature=1.5).choices[0].message.content for _ in range(4)}) > 1   # no seed: a new sample each time

def test_hot_swap_through_the_admin_endpoint(server, keys, served):
    _, url = server
    ops = {"Authorization": f"Bearer {keys[0]['ops']}"}
    def admin(method, name, body=None):
        u = urlsplit(url); c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        c.request(method, f"/admin/modifiers/{name}", body=json.dumps(body) if body else None, headers=ops)
        r = c.getresponse(); out = (r.status, json.loads(r.read())); c.close(); return out
    c, gguf = client(url, keys[0]["ent"]), str(served.modifiers["reasoning"]["gguf"])
    want = c.chat.completions.create(model="reasoning", messages=MSG, max_tokens=6, temperature=0).choices[0].message.content
    status, body = admin("PUT", "logic", {"gguf": gguf, "phase": 1}); assert status == 200 and body["replaced"] is False, body
    assert c.chat.completions.create(model="logic", messages=MSG, max_tokens=6, temperature=0).choices[0].message.content == want
    status, body = admin("PUT", "logic", {"gguf": str(served.base / "model.gguf"), "phase": 1})     # no PEFT folder beside it
    assert status == 400 and "no PEFT adapter" in body["error"]["message"], body
    assert admin("DELETE", "logic") == (200, {"name": "logic", "removed": True})
    with pytest.raises(openai.NotFoundError): c.chat.completions.create(model="logic", messages=MSG, max_tokens=3)
    assert c.chat.completions.create(model="reasoning", messages=MSG, max_tokens=6, temperature=0).choices[0].message.content == want

def test_greedy_answers_agree_with_llamacpp(served, tb):
    """The same F16 weights (dequantized for torch) and the same LoRA (PEFT here, its GGUF conversion there): the greedy
    answers of both backends, base and modifier, on 8 prompts x 24 tokens. Measured: all 16 answers identical. Token ids
    can differ where two logits nearly tie (llama.cpp rounds activations to F16 in its F16 matmuls; torch stays in float32),
    so the bound allows a little: at least 90% of the tokens in the common prefix of the two answers, and 14 of 16 identical."""
    from modforge_nb.serve_backend import load_backend
    lb = load_backend(served, n_ctx=512)
    try:
        m = lb.model                                    # one llama.cpp context: its end-of-generation set is ours
        vocab = m.C.llama_model_get_vocab(m.llm._model.model)
        assert {i for i in range(m.C.llama_vocab_n_tokens(vocab)) if m.C.llama_vocab_is_eog(vocab, i)} == tb.eog
        same = common = total = 0
        for p in PROMPTS:
            for mod in (None, "reasoning"):
                msgs = [{"role": "user", "content": p}]
                (a, pa, ca), (b, pb, cb) = tb.generate(msgs, mod, 24), lb.generate(msgs, mod, 24)
                assert pa == pb                         # the same prompt tokens
                x, y = (tb.tok(t, add_special_tokens=False).input_ids for t in (a, b))
                k = next((i for i, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y)))
                same, common, total = same + (a == b), common + k, total + max(len(x), len(y))
        print(f"transformers vs llama.cpp, greedy: {same}/16 answers identical, {common}/{total} tokens in the common prefix")
        assert same >= 14 and common >= 0.9 * total, (same, common, total)
    finally: lb.close()
