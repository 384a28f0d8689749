#!/usr/bin/env python3
"""Load test of `qwenkit serve` on loopback: CLIENTS concurrent clients send REQUESTS streamed
chat completions in total, each asking for exactly MAX_TOKENS tokens; every request must finish
with `length`, report `completion_tokens == MAX_TOKENS` in its usage chunk, and stream some text,
with no error. Reports total throughput (generated tokens / wall time), time to first token, and
the server's peak RSS (VmHWM), for each `--parallel` value given.

Usage: python benchmarks/load-test.py [--binary .build/release/qwenkit] [--parallel 1 4]
                                      [--clients 16] [--requests 64] [--max-tokens 32]
Needs httpx (scripts/setup-python.sh's venv has it).
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

try:
    import httpx
except ImportError:  # newer openai releases depend on the renamed httpx2
    import httpx2 as httpx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def one_request(base, index, max_tokens, model_id):
    body = {"model": model_id, "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": f"Count from {index + 1} to 100000, one number per line."}]}
    start = time.time()
    first = None
    text, finish, usage = "", None, None
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=600) as response:
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}: {response.read()[:200]!r}")
        done = False
        for line in response.iter_lines():
            if not line:
                continue
            assert line.startswith("data: "), line
            payload = line[len("data: "):]
            if payload == "[DONE]":
                done = True
                break
            chunk = json.loads(payload)
            if "error" in chunk:
                raise RuntimeError(f"error event: {chunk}")
            if chunk.get("usage"):
                usage = chunk["usage"]
            for choice in chunk.get("choices", []):
                piece = choice["delta"].get("content") or ""
                if piece and first is None:
                    first = time.time() - start
                text += piece
                finish = choice.get("finish_reason") or finish
        assert done, "no [DONE]"
    assert finish == "length", f"finish_reason {finish!r}: {text!r}"
    assert usage and usage["completion_tokens"] == max_tokens, usage
    assert text, "no text arrived"
    return {"tokens": usage["completion_tokens"], "ttft": first, "seconds": time.time() - start}


def run(binary, model, parallel, clients, requests, max_tokens, threads):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [binary, "serve", "--port", str(port), "--parallel", str(parallel), "--queue", str(requests)]
    if model:
        args += ["-m", model]
    if threads:
        args += ["--threads", str(threads)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        model_id = httpx.get(base + "/v1/models").json()["data"][0]["id"]
        one_request(base, 10_000, 4, model_id)  # warm-up, not counted
        results, errors = [], []
        lock = threading.Lock()
        counter = iter(range(requests))

        def client():
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                try:
                    result = one_request(base, index, max_tokens, model_id)
                    with lock:
                        results.append(result)
                except Exception as e:  # counted and reported
                    with lock:
                        errors.append(f"request {index}: {type(e).__name__}: {e}")

        start = time.time()
        workers = [threading.Thread(target=client) for _ in range(clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.time() - start
        rss = peak_rss(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=30)
    tokens = sum(r["tokens"] for r in results)
    ttfts = [r["ttft"] for r in results if r["ttft"] is not None]
    return {"parallel": parallel, "clients": clients, "requests": requests, "completed": len(results),
            "errors": errors, "max_tokens": max_tokens, "generated_tokens": tokens, "wall_seconds": round(wall, 2),
            "tokens_per_second": round(tokens / wall, 2),
            "ttft_median_seconds": round(statistics.median(ttfts), 2) if ttfts else None,
            "request_seconds_median": round(statistics.median(r["seconds"] for r in results), 2) if results else None,
            "peak_rss_mib": round(rss / 2**20, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binary", default=".build/release/qwenkit")
    p.add_argument("--model", default=os.environ.get("QWENKIT_MODEL"))
    p.add_argument("--parallel", type=int, nargs="+", default=[1, 4])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--max-rss-mib", type=float, default=2048, help="fail when the server's peak RSS exceeds this")
    args = p.parse_args()
    failed = False
    for parallel in args.parallel:
        r = run(args.binary, args.model, parallel, args.clients, args.requests, args.max_tokens, args.threads)
        print(json.dumps(r), flush=True)
        if r["errors"] or r["completed"] != args.requests or r["peak_rss_mib"] > args.max_rss_mib:
            failed = True
            for e in r["errors"][:10]:
                print("  " + e, file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
