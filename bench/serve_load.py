"""Serving benchmark: `modforge serve RUN` on loopback under a bounded load, and its decode speed against raw llama.cpp.

    .venv/bin/python bench/serve_load.py [RUN] [--clients 16] [--requests 50] [--max-tokens 32] [--contexts 2] [--threads 1]

1. Starts the real server (`modforge serve RUN`, its own process, a free loopback port, a scratch request log).
2. Decode speed, one request at a time: a streamed answer through the server (the time between its first and last
   content chunk over the tokens between them) against raw llama.cpp (llama-cpp-python's `Llama.generate` on the same
   GGUF, the same prompt tokens, threads and sampling), alternating, median of `--repeats`. The server runs with
   `--profile minimal` for this part so both decode the same weights (no modifier).
3. Load: `--clients` threads, each sending `--requests` requests with the official `openai` client (questions of every
   Phase 1 domain and general ones; the base name, so the router picks; every 4th a forced modifier; every 3rd
   streamed), then stops. Reports errors, p50/p95/max latency, time to first token of the streamed ones, requests/s and
   completion tokens/s over the whole load.

Prints a markdown table; exits 1 if any request failed. Not a test: it asserts nothing about speed.
"""
from __future__ import annotations
import argparse, json, os, socket, statistics, subprocess, sys, tempfile, threading, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["Write a Python function that returns the factorial of n.", "What is 17 * 23? Think step by step.",
             "Call the weather tool for Paris tomorrow.", "Tell me a fun fact about octopuses.",
             "Write a function is_palindrome(s) in Python.", "If a train goes 60 km in 45 minutes, what is its speed in km/h?",
             "Book a table for two at 7pm using the restaurant API.", "Explain what a compiler does in two sentences."]
LONG = [{"role": "user", "content": "Write a long story about a robot who learns to paint. Use many details."}]

def free_port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def start_server(run: str, contexts: int, threads: int, profile: str, log: Path, ctx: int):
    "The server process and its URL, once /healthz answers (its output goes to `log`.out)."
    import urllib.request
    port = free_port()
    cmd = [str(ROOT / ".venv" / "bin" / "modforge"), "serve", run, "--port", str(port), "--contexts", str(contexts),
           "--threads", str(threads), "--profile", profile, "--log", str(log), "--ctx", str(ctx)]
    out = open(f"{log}.out", "w")
    p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if p.poll() is not None: raise RuntimeError(f"the server exited ({p.returncode}): {Path(f'{log}.out').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r: return p, url, json.load(r)
        except OSError: time.sleep(0.25)
    p.kill(); raise RuntimeError("the server did not answer /healthz within 5 minutes")

def streamed(client, model: str, messages, max_tokens: int, seed: int | None = None) -> dict:
    "One streamed answer: latency, time to first content, first-to-last content seconds, completion tokens."
    t0 = time.perf_counter(); first = last = None; usage = None
    for ch in client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens, temperature=0, stream=True,
                                             stream_options={"include_usage": True}, **({"seed": seed} if seed is not None else {})):
        if ch.choices and ch.choices[0].delta.content:
            last = time.perf_counter(); first = first or last
        if ch.usage: usage = ch.usage
    end = time.perf_counter()
    return {"latency": end - t0, "ttft": (first or end) - t0, "decode_s": (last or end) - (first or end),
            "completion_tokens": usage.completion_tokens if usage else 0, "prompt_tokens": usage.prompt_tokens if usage else 0}

def raw_decode(gguf: Path, tok_folder: Path, messages, tokens: int, threads: int, ctx: int):
    "(a function timing one greedy run of raw llama.cpp on the same file and prompt tokens: seconds a token, first to last; close)."
    from llama_cpp import Llama
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(tok_folder))
    ids = tok(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False), add_special_tokens=False).input_ids
    llm = Llama(model_path=str(gguf), n_ctx=ctx, n_threads=threads, n_threads_batch=threads, verbose=False)
    def once():
        llm.reset(); n, first = 0, None
        for _ in llm.generate(ids, top_k=0, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
            n += 1; first = first or time.perf_counter()
            if n >= tokens: break
        return (time.perf_counter() - first) / max(1, n - 1)
    return once, llm.close

def load(url: str, model: str, forced: list[str], clients: int, requests: int, max_tokens: int) -> tuple[list[dict], list[str], float]:
    import openai
    rows, errors, lock = [], [], threading.Lock()
    def client_loop(c: int):
        cl = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
        for i in range(requests):
            q = QUESTIONS[(c + i) % len(QUESTIONS)]
            name = forced[(c + i) % len(forced)] if forced and i % 4 == 3 else model
            msgs = [{"role": "user", "content": q}]
            try:
                if i % 3 == 2: r = streamed(cl, name, msgs, max_tokens) | {"stream": True}
                else:
                    t0 = time.perf_counter()
                    resp = cl.chat.completions.create(model=name, messages=msgs, max_tokens=max_tokens, temperature=0)
                    r = {"latency": time.perf_counter() - t0, "completion_tokens": resp.usage.completion_tokens, "stream": False,
                         "modifier": resp.modforge["modifier"]}
                with lock: rows.append(r)
            except Exception as e:
                with lock: errors.append(f"client {c} request {i}: {type(e).__name__}: {e}"[:300])
    t0 = time.perf_counter()
    ts = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
    for t in ts: t.start()
    for t in ts: t.join()
    return rows, errors, time.perf_counter() - t0

def pct(xs, q): xs = sorted(xs); return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", nargs="?", default="default", help="a run id in runs/ or a run folder (what `modforge serve` takes)")
    ap.add_argument("--clients", type=int, default=16); ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--max-tokens", type=int, default=32); ap.add_argument("--contexts", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1); ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5, help="single-stream decode measurements, each way")
    ap.add_argument("--decode-tokens", type=int, default=64)
    a = ap.parse_args(argv)
    import openai
    from modforge_nb.serve_backend import load_served
    from modforge_nb.runs import Run, default_runs_dir
    run_path = Path(a.run) if Path(a.run).is_dir() else default_runs_dir() / a.run
    served = load_served(run_path)
    tmp = Path(tempfile.mkdtemp(prefix="serve-load-"))
    lines = [f"| measure | value |", "|---|---:|"]
    # 2. single-stream decode, the server (base only) against raw llama.cpp, alternating
    p, url, health = start_server(str(run_path), 1, a.threads, "minimal", tmp / "decode.sqlite", a.ctx)
    try:
        cl = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=600)
        base = health["base"]
        streamed(cl, base, LONG, 8)                                        # warm-up
        raw, close_raw = raw_decode(served.base / "model.gguf", served.base, LONG, a.decode_tokens, a.threads, a.ctx)
        srv_rates, raw_rates, n_tokens = [], [], []
        for _ in range(a.repeats):
            r = streamed(cl, base, LONG, a.decode_tokens, seed=0)
            n_tokens.append(r["completion_tokens"])
            srv_rates.append((r["completion_tokens"] - 1) / r["decode_s"] if r["decode_s"] > 0 else float("nan"))
            raw_rates.append(1 / raw())
        close_raw()
    finally:
        p.kill(); p.wait()
    srv, rw = statistics.median(srv_rates), statistics.median(raw_rates)
    lines += [f"| decode tok/s, one stream, through the server (median of {a.repeats}, {statistics.median(n_tokens)} tokens) | {srv:.1f} |",
              f"| decode tok/s, raw llama.cpp, same GGUF/prompt/threads | {rw:.1f} |",
              f"| server / raw | {srv / rw:.2f}x (target >= 0.80x) |"]
    # 3. the load, every modifier the run serves loaded
    p, url, health = start_server(str(run_path), a.contexts, a.threads, "complete", tmp / "load.sqlite", a.ctx)
    try: rows, errors, wall = load(url, health["base"], health["modifiers"], a.clients, a.requests, a.max_tokens)
    finally: p.kill(); p.wait()
    lat, st = [r["latency"] for r in rows], [r for r in rows if r["stream"]]
    toks = sum(r["completion_tokens"] for r in rows)
    lines += [f"| load: clients x requests | {a.clients} x {a.requests} ({len(rows) + len(errors)} sent, max_tokens {a.max_tokens}, "
              f"{a.contexts} contexts, {a.threads} thread(s) each) |",
              f"| errors | {len(errors)} |", f"| wall time | {wall:.1f} s |",
              f"| latency p50 / p95 / max | {pct(lat, .5):.2f} / {pct(lat, .95):.2f} / {max(lat, default=float('nan')):.2f} s |",
              f"| time to first token p50 / p95 (streamed, {len(st)}) | {pct([r['ttft'] for r in st], .5):.2f} / {pct([r['ttft'] for r in st], .95):.2f} s |",
              f"| throughput | {len(rows) / wall:.2f} requests/s, {toks / wall:.1f} completion tokens/s |",
              f"| modifiers used (non-streamed answers) | {json.dumps({m or 'base': sum(1 for r in rows if r.get('modifier', '-') == m) for m in {r.get('modifier') for r in rows if 'modifier' in r}})} |"]
    print(f"serving benchmark: run {run_path.name}, base {served.base}, {os.cpu_count()} CPUs\n" + "\n".join(lines))
    for e in errors[:10]: print("error:", e)
    return 1 if errors else 0

if __name__ == "__main__":
    sys.exit(main())
