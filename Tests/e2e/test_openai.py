#!/usr/bin/env python3
"""End-to-end test of `qwenkit serve` with the real `openai` Python SDK (from PyPI).

Starts the server on a free loopback port with an API key and the default model, then checks a
plain chat, a streamed chat, tool calls (the client parses them; the tool result goes back and is
answered), `response_format` with a JSON schema (validated with `jsonschema`), an authentication
failure, every client-error case with OpenAI's envelope, and that closing a streamed request
cancels its generation (seen in /metrics).

Usage: python Tests/e2e/test_openai.py [--binary .build/release/qwenkit] [--model MODEL]
A plain script (no pytest needed); exits non-zero on the first failure. Run it through
scripts/setup-python.sh's venv: scripts/test-e2e.sh does both.
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

try:
    import httpx
except ImportError:  # newer openai releases depend on the renamed httpx2
    import httpx2 as httpx
import jsonschema
import openai

API_KEY = "sk-qwenkit-e2e"
CONTEXT = 1024

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city, e.g. Paris"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Tokyo in celsius?"}]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, model, extra=()):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--api-key", API_KEY,
                "--context", str(CONTEXT), "--max-body-bytes", str(1 << 20), *extra]
        if model:
            args += ["-m", model]
        self.log = open(os.environ.get("QWENKIT_E2E_LOG", "/tmp/qwenkit-e2e-server.log"), "w")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"qwenkit serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                if httpx.get(self.base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline:
                self.stop()
                raise SystemExit("qwenkit serve did not answer /health within 120 s")
            time.sleep(0.2)

    def metric(self, name):
        text = httpx.get(self.base + "/metrics", timeout=10).text
        match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        assert match, f"{name} missing from /metrics"
        return float(match.group(1))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def check_envelope(response, status, param=None):
    """OpenAI's error envelope: exactly {"error": {"message", "type", "param", "code"}}."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str), error
    if param is not None:
        assert error["param"] == param, error
    return error


def run(server, model_id):
    client = openai.OpenAI(base_url=server.base + "/v1", api_key=API_KEY, max_retries=0, timeout=120)
    raw = httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)
    checks = []

    def check(name):
        def wrap(f):
            checks.append((name, f))
            return f
        return wrap

    @check("models")
    def _():
        ids = [m.id for m in client.models.list().data]
        assert ids == [model_id], ids
        assert client.models.retrieve(model_id).id == model_id

    @check("plain chat")
    def _():
        r = client.chat.completions.create(model=model_id, max_tokens=24, temperature=0,
                                           messages=[{"role": "system", "content": "You are terse."},
                                                     {"role": "user", "content": "What is the capital of France?"}])
        choice = r.choices[0]
        assert r.object == "chat.completion" and r.id.startswith("chatcmpl-"), r
        assert choice.message.role == "assistant"
        assert isinstance(choice.message.content, str) and choice.message.content.strip(), choice
        assert "Paris" in choice.message.content, choice.message.content
        assert choice.finish_reason in ("stop", "length")
        assert not choice.message.tool_calls
        assert 0 < r.usage.completion_tokens <= 24 and r.usage.prompt_tokens > 10
        assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    @check("streamed chat")
    def _():
        request = dict(model=model_id, max_tokens=24, temperature=0,
                       messages=[{"role": "user", "content": "Count from 1 to 5, separated by commas."}])
        whole = client.chat.completions.create(**request)
        stream = client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content, (text, whole.choices[0].message.content)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes == [whole.choices[0].finish_reason], finishes
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
        assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens
        assert len({c.id for c in chunks}) == 1

    @check("tool call, tool result, answer")
    def _():
        r = client.chat.completions.create(model=model_id, messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
                                           temperature=0, max_tokens=64)
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        assert not choice.message.content, choice.message.content
        calls = choice.message.tool_calls
        assert calls and len(calls) == 1, calls
        call = calls[0]
        assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
        arguments = json.loads(call.function.arguments)
        assert "tokyo" in arguments["city"].lower(), arguments

        # The same request streamed: the arguments deltas add up to the same JSON.
        stream = client.chat.completions.create(model=model_id, messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
                                                temperature=0, max_tokens=64, stream=True)
        deltas, finish, content = {}, None, ""
        for chunk in stream:
            delta = chunk.choices[0].delta
            content += delta.content or ""
            for d in delta.tool_calls or []:
                entry = deltas.setdefault(d.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = entry["id"] or d.id
                entry["name"] += (d.function.name or "") if d.function else ""
                entry["arguments"] += (d.function.arguments or "") if d.function else ""
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls" and content == "", (finish, content)
        assert [e["name"] for e in deltas.values()] == ["get_weather"], deltas
        assert json.loads(deltas[0]["arguments"]) == arguments

        # The tool result goes back and is answered in words.
        messages = WEATHER_QUESTION + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call.id, "type": "function",
                 "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"city": "Tokyo", "temperature_c": 21, "conditions": "sunny"})},
        ]
        answer = client.chat.completions.create(model=model_id, messages=messages, tools=[WEATHER_TOOL],
                                                temperature=0, max_tokens=48)
        final = answer.choices[0]
        assert final.finish_reason in ("stop", "length"), final
        assert not final.message.tool_calls, final.message.tool_calls
        assert final.message.content and "21" in final.message.content, final.message.content

    @check("tool_choice none offers no tools")
    def _():
        r = client.chat.completions.create(model=model_id, messages=WEATHER_QUESTION, tools=[WEATHER_TOOL],
                                           tool_choice="none", temperature=0, max_tokens=24)
        assert not r.choices[0].message.tool_calls and r.choices[0].finish_reason != "tool_calls"

    @check("response_format json_schema")
    def _():
        schema = {"type": "object",
                  "properties": {"city": {"type": "string"}, "country": {"type": "string"},
                                 "population_millions": {"type": "number"},
                                 "continent": {"type": "string", "enum": ["Africa", "Asia", "Europe", "America", "Oceania"]}},
                  "required": ["city", "country", "population_millions", "continent"],
                  "additionalProperties": False}
        r = client.chat.completions.create(
            model=model_id, temperature=0, max_tokens=120,
            messages=[{"role": "user", "content": "Describe Tokyo as JSON."}],
            response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}})
        assert r.choices[0].finish_reason == "stop", r.choices[0]
        document = json.loads(r.choices[0].message.content)
        jsonschema.validate(document, schema)

        r = client.chat.completions.create(model=model_id, temperature=0.7, seed=1, max_tokens=120,
                                           messages=[{"role": "user", "content": "Give me a JSON object about cats."}],
                                           response_format={"type": "json_object"})
        assert r.choices[0].finish_reason == "stop", r.choices[0]
        assert isinstance(json.loads(r.choices[0].message.content), dict)

    @check("text completion")
    def _():
        r = client.completions.create(model=model_id, prompt="def add(a, b):", max_tokens=12, temperature=0)
        assert r.object == "text_completion" and r.choices[0].text and r.usage.completion_tokens <= 12

    @check("authentication failure")
    def _():
        bad = openai.OpenAI(base_url=server.base + "/v1", api_key="sk-wrong", max_retries=0)
        try:
            bad.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
            raise AssertionError("a wrong key was accepted")
        except openai.AuthenticationError as e:
            assert e.status_code == 401
            check_envelope(e.response, 401)
        check_envelope(httpx.get(server.base + "/v1/models"), 401)

    @check("malformed JSON")
    def _():
        r = raw.post("/v1/chat/completions", content=b'{"model": "x", "messages": [',
                     headers={"Content-Type": "application/json"})
        check_envelope(r, 400)

    @check("wrong types")
    def _():
        for field, value in [("max_tokens", "ten"), ("temperature", "hot"), ("stream", "yes"), ("messages", "hi")]:
            body = {"model": model_id, "messages": [{"role": "user", "content": "Hi"}], field: value}
            try:
                client.chat.completions.create(**body)
                raise AssertionError(f"{field}={value!r} was accepted")
            except openai.BadRequestError as e:
                assert check_envelope(e.response, 400)["param"] == field

    @check("unknown fields tolerated")
    def _():
        r = client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Hi"}], max_tokens=2,
                                           extra_body={"frobnicate": 1, "cache_prompt": True})
        assert r.choices[0].message is not None

    @check("unknown model")
    def _():
        try:
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
            raise AssertionError("an unknown model was accepted")
        except openai.NotFoundError as e:
            assert check_envelope(e.response, 404, "model")["code"] == "model_not_found"

    @check("n > 1")
    def _():
        try:
            client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": "Hi"}], n=2)
            raise AssertionError("n=2 was accepted")
        except openai.BadRequestError as e:
            check_envelope(e.response, 400, "n")

    @check("prompt longer than the context")
    def _():
        long = " ".join(["lorem ipsum dolor sit amet"] * 400)
        try:
            client.chat.completions.create(model=model_id, messages=[{"role": "user", "content": long}])
            raise AssertionError("an over-long prompt was accepted")
        except openai.BadRequestError as e:
            error = check_envelope(e.response, 400, "messages")
            assert error["code"] == "context_length_exceeded", error
            numbers = [int(n) for n in re.findall(r"\d+", error["message"])]
            assert CONTEXT in numbers and any(n > CONTEXT for n in numbers), error["message"]

    @check("oversized body")
    def _():
        body = json.dumps({"model": model_id, "messages": [{"role": "user", "content": "x" * (2 << 20)}]})
        check_envelope(raw.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}), 413)

    @check("cancellation")
    def _():
        cancelled = server.metric("qwenkit_cancelled_generations_total")
        generated = server.metric("qwenkit_generated_tokens_total")
        body = {"model": model_id, "stream": True, "max_tokens": CONTEXT - 100, "temperature": 0.8, "seed": 3,
                "messages": [{"role": "user", "content": "Write a very long story about a dragon."}]}
        read = 0
        with raw.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if line.startswith("data: ") and '"content"' in line:
                    read += 1
                    if read == 3:  # the role chunk, then two tokens
                        break
        closed = time.time()
        while server.metric("qwenkit_cancelled_generations_total") < cancelled + 1:
            assert time.time() - closed < 10, "the generation was not cancelled within 10 s of closing"
            time.sleep(0.05)
        seconds = time.time() - closed
        made = server.metric("qwenkit_generated_tokens_total") - generated
        time.sleep(1)
        assert server.metric("qwenkit_generated_tokens_total") - generated == made, "tokens kept coming"
        print(f"    cancelled {seconds * 1000:.0f} ms after closing; {made:.0f} tokens generated in all "
              f"(2 read by the client)")
        assert made <= 2 + 5, f"{made} tokens: generation did not stop within a step or so"

    failed = 0
    for name, f in checks:
        start = time.time()
        try:
            f()
            print(f"ok   {name} ({time.time() - start:.1f} s)")
        except Exception as e:  # report every check, then fail
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    return failed


def run_qwen35(server):
    """The tiny Qwen3.5 hybrid (random weights, the real tokenizer and template): a forced tool call
    in Qwen3.5's XML form reaches the SDK as `tool_calls`, streamed and not; a follow-up request
    takes the conversation from the slot's cache."""
    client = openai.OpenAI(base_url=server.base + "/v1", api_key=API_KEY, max_retries=0, timeout=120)
    named = {"type": "function", "function": {"name": "get_weather"}}
    # Closed values only: random weights never end a free-text value.
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "required": ["city", "metric"],
        "properties": {"city": {"type": "string", "enum": ["Paris", "Tokyo"]}, "metric": {"type": "boolean"}}}}}
    no_think = {"chat_template_kwargs": {"enable_thinking": False}}
    model = client.models.list().data[0].id
    failed = 0

    def report(name, f):
        nonlocal failed
        start = time.time()
        try:
            f()
            print(f"ok   qwen3.5: {name} ({time.time() - start:.1f} s)")
        except Exception as e:
            failed += 1
            print(f"FAIL qwen3.5: {name}: {type(e).__name__}: {e}")

    def plain():
        reply = client.chat.completions.create(model=model, messages=WEATHER_QUESTION, tools=[tool],
                                               tool_choice=named, temperature=0, max_tokens=200, extra_body=no_think)
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls", choice
        calls = choice.message.tool_calls
        assert calls and calls[0].function.name == "get_weather", choice.message
        arguments = json.loads(calls[0].function.arguments)
        assert arguments.get("city") in ("Paris", "Tokyo") and isinstance(arguments.get("metric"), bool), arguments
        assert calls[0].id and calls[0].type == "function", calls[0]

    def streamed():
        stream = client.chat.completions.create(model=model, messages=WEATHER_QUESTION, tools=[tool],
                                                tool_choice=named, temperature=0, max_tokens=200, stream=True,
                                                extra_body=no_think)
        names, arguments, finish, content = {}, {}, None, ""
        for chunk in stream:
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            content += delta.content or ""
            for call in delta.tool_calls or []:
                if call.function and call.function.name:
                    names[call.index] = call.function.name
                if call.function and call.function.arguments:
                    arguments[call.index] = arguments.get(call.index, "") + call.function.arguments
            finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls" and names == {0: "get_weather"}, (finish, names, content)
        assert "<tool_call>" not in content and "<function=" not in content, content
        parsed = json.loads(arguments[0])
        assert parsed.get("city") in ("Paris", "Tokyo") and isinstance(parsed.get("metric"), bool), arguments

    def conversation():
        messages = [{"role": "user", "content": "What is the capital of France?"}]
        first = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=4,
                                               extra_body=no_think)
        messages += [{"role": "assistant", "content": first.choices[0].message.content},
                     {"role": "user", "content": "And of Italy?"}]
        second = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=4,
                                                extra_body=no_think)
        cached = second.usage.prompt_tokens_details.cached_tokens
        assert cached >= first.usage.prompt_tokens - 10, (cached, first.usage, second.usage)

    report("a named tool_choice gives an XML call the SDK reads as tool_calls", plain)
    report("the same call streamed as tool_calls deltas", streamed)
    report("the second turn of a conversation comes from the cache", conversation)
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", default=".build/release/qwenkit")
    parser.add_argument("--model", default=os.environ.get("QWENKIT_MODEL"),
                        help="model to serve (default: qwenkit's default model)")
    args = parser.parse_args()
    start = time.time()
    server = Server(args.binary, args.model)
    try:
        model_id = httpx.get(server.base + "/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}).json()["data"][0]["id"]
        failed = run(server, model_id)
    finally:
        server.stop()
    fixtures = os.environ.get("QWENKIT_FIXTURES")
    if fixtures:
        hybrid = Server(args.binary, os.path.join(fixtures, "models", "tiny-qwen35"))
        try:
            failed += run_qwen35(hybrid)
        finally:
            hybrid.stop()
    else:
        print("skip qwen3.5 checks: QWENKIT_FIXTURES is not set")
    print(f"{'FAILED' if failed else 'passed'}: e2e against {args.binary} in {time.time() - start:.0f} s"
          + (f" ({failed} failing; server log: {server.log.name})" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
