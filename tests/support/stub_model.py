#!/usr/bin/env python3
"""A stub OpenAI-compatible model server for pincer's tests.

GET  .../models            -> 200 with one model (503 while --down-file exists)
POST .../chat/completions  -> a reply, streamed (SSE) when "stream": true

The reply is "ECHO: <last user text>", then " | HISTORY: <the texts of the
assistant messages in this request>" when it carries any (a gateway that
replays a session's turns), then " | PREVIOUS: <the prompt of the previous
request with the same `user` (or x-openclaw-session-key header)>" when
there was one, so a test sees turn 1 in turn 2's reply. Usage is always
{10, 5, 15}.

Binds 127.0.0.1 on --port (default 0: any free port) and prints the port on
stdout, one line, once it listens.

Options (each also as an environment variable):
  --log FILE        (STUB_LOG)        append every request as one JSON line:
                                      {"method","path","headers","body","t"}
  --fail-first K    (STUB_FAIL_FIRST) answer the first K chat requests with
  --fail-status N   (STUB_FAIL_STATUS, default 429) status N
  --retry-after V   (STUB_RETRY_AFTER) and this Retry-After header (if set)
  --fail-always N   (STUB_FAIL_ALWAYS) answer every chat request with status N
  --fail-word W     (STUB_FAIL_WORD)  answer the first chat request whose prompt
                                      contains W with --fail-status (and
                                      --retry-after); later ones are answered
  --delay S         (STUB_DELAY)      sleep S seconds between streamed chunks
  --chunks N        (STUB_CHUNKS, default 8) split the reply into N chunks
  --down-file F     (STUB_DOWN_FILE)  while F exists, /models answers 503
  --ignore-stream   (STUB_IGNORE_STREAM=1) answer one JSON body even when
                                      asked to stream (as some servers do)
  A prompt containing "DROP" gets its first chunk, then the connection closes.
  --hold-file F     (STUB_HOLD_FILE)  a streamed reply to a prompt containing
                                      "HOLD" stops after its first chunk until
                                      F exists (a test's gate, not a timer)
"""
import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def env(name, default=None):
    return os.environ.get(name, default)


parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=int(env("STUB_PORT", "0")))
parser.add_argument("--log", default=env("STUB_LOG"))
parser.add_argument("--fail-first", type=int, default=int(env("STUB_FAIL_FIRST", "0")))
parser.add_argument("--fail-status", type=int, default=int(env("STUB_FAIL_STATUS", "429")))
parser.add_argument("--retry-after", default=env("STUB_RETRY_AFTER"))
parser.add_argument("--fail-word", default=env("STUB_FAIL_WORD"))
parser.add_argument("--fail-always", type=int, default=int(env("STUB_FAIL_ALWAYS", "0")))
parser.add_argument("--delay", type=float, default=float(env("STUB_DELAY", "0")))
parser.add_argument("--chunks", type=int, default=int(env("STUB_CHUNKS", "8")))
parser.add_argument("--down-file", default=env("STUB_DOWN_FILE"))
parser.add_argument("--hold-file", default=env("STUB_HOLD_FILE"))
parser.add_argument("--ignore-stream", action="store_true", default=env("STUB_IGNORE_STREAM") == "1")
args = parser.parse_args()

lock = threading.Lock()
chat_requests = 0
last_prompt = {}  # user -> the last prompt seen for it
word_failed = False  # --fail-word has had its one failure
MODEL = "stub-model"
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}


def text_of(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def record(entry):
    if not args.log:
        return
    with lock:
        with open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send_json(self, code, obj, headers=None):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        record({"method": "GET", "path": self.path, "headers": dict(self.headers), "t": time.time()})
        if self.path.rstrip("/").endswith("/models"):
            if args.down_file and os.path.exists(args.down_file):
                return self.send_json(503, {"error": {"message": "stub is down"}})
            return self.send_json(200, {"object": "list",
                                        "data": [{"id": MODEL, "object": "model", "owned_by": "stub"}]})
        self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        global chat_requests
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        record({"method": "POST", "path": self.path, "headers": dict(self.headers),
                "body": body, "t": time.time()})
        if not self.path.rstrip("/").endswith("/chat/completions"):
            return self.send_json(404, {"error": {"message": "not found"}})
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self.send_json(400, {"error": {"message": "messages required",
                                                  "type": "invalid_request_error"}})
        with lock:
            chat_requests += 1
            n = chat_requests
        if args.fail_always:
            return self.send_json(args.fail_always, {"error": {"message": "stub forced failure",
                                                               "type": "invalid_request_error"}})
        if n <= args.fail_first:
            headers = {"Retry-After": args.retry_after} if args.retry_after else {}
            return self.send_json(args.fail_status, {"error": {"message": "stub rate limit",
                                                               "type": "rate_limit_error"}}, headers)

        msgs = [m for m in body["messages"] if isinstance(m, dict)]
        users = [m for m in msgs if m.get("role") == "user"
                 and not text_of(m.get("content")).lstrip().startswith("<<<BEGIN_OPENCLAW_INTERNAL_CONTEXT")]
        last = text_of(users[-1].get("content")) if users else ""
        if args.fail_word and args.fail_word in last:
            global word_failed
            with lock:
                first, word_failed = not word_failed, True
            if first:
                headers = {"Retry-After": args.retry_after} if args.retry_after else {}
                return self.send_json(args.fail_status, {"error": {"message": "stub rate limit",
                                                                   "type": "rate_limit_error"}}, headers)
        reply = "ECHO: " + last.strip()
        history = [text_of(m.get("content")) for m in msgs if m.get("role") == "assistant"]
        if history:
            reply += " | HISTORY: " + " / ".join(history)
        user = body.get("user") or self.headers.get("x-openclaw-session-key")
        if isinstance(user, str) and user:
            with lock:
                previous = last_prompt.get(user)
                last_prompt[user] = last.strip()
            if previous is not None:
                reply += " | PREVIOUS: " + previous
        model = body.get("model", MODEL)
        cid, now = "chatcmpl-stub", int(time.time())
        if not body.get("stream") or args.ignore_stream:
            return self.send_json(200, {"id": cid, "object": "chat.completion", "created": now, "model": model,
                                        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                                                     "finish_reason": "stop"}],
                                        "usage": USAGE})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

        def event(delta, finish=None, extra=None):
            d = {"id": cid, "object": "chat.completion.chunk", "created": now, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if extra:
                d.update(extra)
            self.wfile.write(b"data: " + json.dumps(d).encode() + b"\n\n")
            self.wfile.flush()

        try:
            event({"role": "assistant", "content": ""})
            size = max(1, -(-len(reply) // max(1, args.chunks)))
            hold = args.hold_file and "HOLD" in last
            for i in range(0, len(reply), size):
                if args.delay:
                    time.sleep(args.delay)
                event({"content": reply[i:i + size]})
                while hold and not os.path.exists(args.hold_file):
                    time.sleep(0.01)
                hold = False
                if "DROP" in last:  # the connection is lost mid-reply
                    self.close_connection = True
                    return
            event({}, "stop")
            include_usage = isinstance(body.get("stream_options"), dict) and body["stream_options"].get("include_usage")
            if include_usage:
                # The usage chunk of OpenAI's stream: no choices.
                self.wfile.write(b"data: " + json.dumps({"id": cid, "object": "chat.completion.chunk",
                                                         "created": now, "model": model, "choices": [],
                                                         "usage": USAGE}).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def log_message(self, *a):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 drops connects under load (bench/agent_turn.py)


server = Server(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
