#!/usr/bin/env python3
"""A scripted "model" for CLI tests (standard library only): an OpenAI-compatible
/v1/chat/completions that answers with the replies in REPLIES.json, one per request, in order
(each is an OpenAI `message` object), then "done". Prints its port on the first line of stdout.
    scripted_endpoint.py REPLIES.json
"""
import http.server
import json
import sys

with open(sys.argv[1]) as f:
    REPLIES = json.load(f)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        message = REPLIES.pop(0) if REPLIES else {"role": "assistant", "content": "done"}
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        body = json.dumps({"id": "x", "object": "chat.completion", "model": "scripted",
                           "choices": [{"index": 0, "message": message, "finish_reason": finish}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
