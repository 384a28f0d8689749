#!/usr/bin/env python3
"""A stand-in for the Hugging Face hub on loopback, for QwenKit's pull tests (real HTTP, real files).

Serves the repositories under --root (ROOT/org/name/...) with the hub's routes and headers:
  GET  /api/models/{org}/{name}/revision/{rev}   -> {"id", "sha", "siblings": [{"rfilename"}]}
  HEAD/GET /{org}/{name}/resolve/{rev}/{file}    -> LFS files (*.gguf, *.safetensors, *.bin): 302 to /cdn/...
                                                    with X-Repo-Commit, X-Linked-Etag (sha256), X-Linked-Size;
                                                    other files: 200 with ETag (git blob sha1), X-Repo-Commit.
  GET  /cdn/{org}/{name}/{file}                  -> the bytes, with Range support (206).
Error answers carry X-Error-Code like the hub (RepoNotFound, EntryNotFound, RevisionNotFound).
Modes: --token T (401 without "Authorization: Bearer T"), --drop-once (the first CDN transfer of each file stops
halfway), --corrupt FILE (serve FILE with one byte changed), --extra-sibling NAME (list a file that is not
there, e.g. ../evil), --bad-json (the API answers invalid JSON), --cdn-host HOST (absolute redirects to
http://HOST:PORT/cdn/...), --endless FILE (the CDN streams FILE's bytes and then more, without end and
without Content-Length, while the hub announces the real size), --endless-api (the API reply never ends). Every request is appended to --log as one JSON line. Prints its port on stdout.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin")


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token")
    p.add_argument("--drop-once", action="store_true")
    p.add_argument("--corrupt", action="append", default=[])
    p.add_argument("--extra-sibling", action="append", default=[])
    p.add_argument("--bad-json", action="store_true")
    p.add_argument("--cdn-host")
    p.add_argument("--endless", action="append", default=[])
    p.add_argument("--endless-api", action="store_true")
    return p.parse_args()


ARGS = parse_args()
LOCK = threading.Lock()
DROPPED = set()


def repo_dir(repo):
    path = os.path.join(ARGS.root, *repo.split("/"))
    return path if len(repo.split("/")) == 2 and os.path.isdir(path) else None


def repo_files(repo):
    base = repo_dir(repo)
    out = []
    for folder, _, names in os.walk(base):
        for name in names:
            out.append(os.path.relpath(os.path.join(folder, name), base).replace(os.sep, "/"))
    return sorted(out)


def file_bytes(repo, name):
    with open(os.path.join(repo_dir(repo), *name.split("/")), "rb") as f:
        return f.read()


def commit_of(repo):
    h = hashlib.sha1(b"commit " + repo.encode())
    for name in repo_files(repo):
        h.update(name.encode() + hashlib.sha256(file_bytes(repo, name)).digest())
    return h.hexdigest()


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def record(self):
        entry = {"method": self.command, "path": self.path, "range": self.headers.get("Range"),
                 "auth": self.headers.get("Authorization"), "host": self.headers.get("Host")}
        with LOCK, open(ARGS.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def do_HEAD(self):
        self.handle_request(body=False)

    def do_GET(self):
        self.handle_request(body=True)

    def fail(self, status, code=None, message=""):
        payload = json.dumps({"error": message or code or str(status)}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def authorized(self):
        return ARGS.token is None or self.headers.get("Authorization") == "Bearer " + ARGS.token

    def handle_request(self, body):
        self.record()
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        parts = path.lstrip("/").split("/")
        if parts[0] == "api" and len(parts) >= 6 and parts[1] == "models" and parts[4] == "revision":
            return self.api(parts[2] + "/" + parts[3], "/".join(parts[5:]))
        if parts[0] == "cdn" and len(parts) >= 4:
            return self.cdn(parts[1] + "/" + parts[2], "/".join(parts[3:]), body)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(parts[0] + "/" + parts[1], parts[3], "/".join(parts[4:]), body)
        self.fail(404, None, "no route")

    def api(self, repo, revision):
        if not self.authorized():
            return self.fail(401, "RepoNotFound", "Invalid credentials")
        if repo_dir(repo) is None:
            return self.fail(404, "RepoNotFound", "Repository not found")
        commit = commit_of(repo)
        if revision not in ("main", commit):
            return self.fail(404, "RevisionNotFound", "Invalid rev id")
        if ARGS.endless_api:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"sha": "' + commit.encode() + b'", "siblings": [')
            return self.stream_forever(b" " * 65536)
        if ARGS.bad_json:
            payload = b'{"sha": "' + commit.encode() + b'", "siblings": [ {"rfil'
        else:
            names = repo_files(repo) + ARGS.extra_sibling
            payload = json.dumps({"id": repo, "sha": commit,
                                  "siblings": [{"rfilename": n} for n in names]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def resolve(self, repo, revision, name, body):
        if not self.authorized():
            return self.fail(401, "RepoNotFound", "Invalid credentials")
        if repo_dir(repo) is None:
            return self.fail(404, "RepoNotFound", "Repository not found")
        commit = commit_of(repo)
        if revision not in ("main", commit):
            return self.fail(404, "RevisionNotFound", "Invalid rev id")
        if name not in repo_files(repo):
            return self.fail(404, "EntryNotFound", "Entry not found")
        data = file_bytes(repo, name)
        if name.endswith(LFS_SUFFIXES):
            sha = hashlib.sha256(data).hexdigest()
            cdn = "/cdn/" + repo + "/" + urllib.parse.quote(name)
            if ARGS.cdn_host:
                cdn = "http://%s:%d%s" % (ARGS.cdn_host, self.server.server_address[1], cdn)
            self.send_response(302)
            self.send_header("Location", cdn)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", '"%s"' % sha)
            self.send_header("X-Linked-Etag", '"%s"' % sha)
            self.send_header("X-Linked-Size", str(len(data)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_bytes(data, body, {"X-Repo-Commit": commit, "ETag": '"%s"' % git_blob_sha1(data)})

    def cdn(self, repo, name, body):
        if repo_dir(repo) is None or name not in repo_files(repo):
            return self.fail(404, None, "no such object")
        data = file_bytes(repo, name)
        if name in ARGS.endless and body:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            self.wfile.write(data)
            return self.stream_forever(b"\0" * 65536)
        if name in ARGS.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        drop = False
        if ARGS.drop_once and body:
            with LOCK:
                if (repo, name) not in DROPPED:
                    DROPPED.add((repo, name))
                    drop = True
        self.send_bytes(data, body, {"ETag": '"cdn-%s"' % hashlib.md5(data).hexdigest()}, drop=drop)

    def stream_forever(self, chunk):
        # Close-delimited (HTTP/1.0): until the client hangs up, or 4 GB as a safety stop.
        self.close_connection = True
        try:
            for _ in range(65536):
                self.wfile.write(chunk)
        except OSError:
            pass

    def send_bytes(self, data, body, headers, drop=False):
        start, status = 0, 200
        requested = self.headers.get("Range")
        if requested and requested.startswith("bytes="):
            first = requested[len("bytes="):].split("-")[0]
            if first.isdigit():
                start = int(first)
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", "bytes */%d" % len(data))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
        chunk = data[start:]
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if not body:
            return
        if drop:
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.close_connection = True
            return
        self.wfile.write(chunk)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
