#!/usr/bin/env python3
"""What pincer adds to one agent turn (docs/benchmarks.md, "Agent turn").

The same stub model (tests/support/stub_model.py, streaming) is asked for
one chat completion two ways, each with `window` turns in flight:

  direct   the client POSTs /v1/chat/completions (stream: true) to the stub
           and reads the stream to its end;
  pincer   the client submits the prompt to pincerd (`submit` with
           `wait: true`) and reads the `end` event; pincerd hands it to
           `pincer-worker --openai STUB`, which streams the same request
           from the stub and sends the result (and its progress) back.

Latency is from the client's first byte out to its last byte in. The
difference of the two p50s is pincer's overhead per turn.

Usage: bench/agent_turn.py [--build build] [--windows 1,16] [--warmup S] [--duration S]
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


async def direct_turn(port, prompt):
    body = json.dumps({"model": "stub-model", "stream": True,
                       "messages": [{"role": "user", "content": prompt}]}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
                 b"\r\n\r\n" + body)
    await writer.drain()
    data = b""
    while b"data: [DONE]" not in data:
        chunk = await reader.read(65536)
        if not chunk:
            raise RuntimeError("stub closed the stream early")
        data += chunk
    writer.close()


class Pincerd:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.waiting = {}
        self.next_req = 1

    @classmethod
    async def connect(cls, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(b'{"type":"hello","proto":1,"token":"","role":"client"}\n')
        await writer.drain()
        line = json.loads(await reader.readline())
        if line.get("type") != "welcome":
            raise RuntimeError("pincerd refused the hello: %s" % line)
        self = cls(reader, writer)
        asyncio.ensure_future(self.read_loop())
        return self

    async def read_loop(self):
        while True:
            line = await self.reader.readline()
            if not line:
                return
            msg = json.loads(line)
            if msg.get("type") == "end":
                fut = self.waiting.pop(msg.get("req"), None)
                if fut:
                    if msg.get("state") not in (None, "succeeded"):
                        fut.set_exception(RuntimeError("task ended %s" % msg))
                    else:
                        fut.set_result(msg)
            elif msg.get("type") == "error":
                fut = self.waiting.pop(msg.get("req"), None)
                if fut:
                    fut.set_exception(RuntimeError(str(msg)))

    async def turn(self, prompt):
        req = self.next_req
        self.next_req += 1
        fut = asyncio.get_running_loop().create_future()
        self.waiting[req] = fut
        self.writer.write(json.dumps({"type": "submit", "req": req, "skills": ["chat"],
                                      "payload": prompt, "wait": True}).encode() + b"\n")
        await fut


async def measure(turn, window, warmup, duration):
    latencies = []
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + duration

    async def lane(i):
        n = 0
        while time.monotonic() < stop_at:
            t0 = time.monotonic()
            await turn("bench turn %d.%d" % (i, n))
            t1 = time.monotonic()
            if t0 >= measure_from and t1 <= stop_at:
                latencies.append(t1 - t0)
            n += 1

    await asyncio.gather(*(lane(i) for i in range(window)))
    return latencies


def start(argv, log, **kw):
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(log, "w"), **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--windows", default="1,16")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=10.0)
    args = ap.parse_args()
    windows = [int(w) for w in args.windows.split(",")]

    work = tempfile.mkdtemp(prefix="agent-turn-")
    procs = []
    try:
        stub = start([sys.executable, os.path.join(ROOT, "tests/support/stub_model.py"), "--chunks", "8"],
                     os.path.join(work, "stub.log"))
        procs.append(stub)
        stub_port = int(stub.stdout.readline())

        config = os.path.join(work, "pincer.yaml")
        with open(config, "w") as f:
            f.write('listen: "127.0.0.1:0"\ndata_dir: "%s/data"\nstore: { kind: memory }\n'
                    "log_level: warn\n" % work)
        addr_file = os.path.join(work, "address")
        pincerd = start([os.path.join(args.build, "pincerd"), "--config", config,
                         "--address-file", addr_file], os.path.join(work, "pincerd.log"))
        procs.append(pincerd)
        while not (os.path.exists(addr_file) and open(addr_file).read().strip()):
            if pincerd.poll() is not None:
                sys.exit("pincerd did not start: see " + work)
            time.sleep(0.01)
        address = open(addr_file).read().strip()
        pincerd_port = int(address.rsplit(":", 1)[1])
        worker = start([os.path.join(args.build, "pincer-worker"), "--addr", address, "--skill", "chat",
                        "--capacity", str(max(windows)), "--log-level", "warn",
                        "--openai", "http://127.0.0.1:%d/v1" % stub_port],
                       os.path.join(work, "worker.log"))
        procs.append(worker)

        async def run():
            client = await Pincerd.connect(pincerd_port)
            # The worker says hello once the stub answers /models: wait for one turn.
            await client.turn("ready?")
            rows = []
            for w in windows:
                d = await measure(lambda p: direct_turn(stub_port, p), w, args.warmup, args.duration)
                p = await measure(client.turn, w, args.warmup, args.duration)
                rows.append((w, d, p))
            return rows

        rows = asyncio.run(run())
        print("| window | direct p50 | direct p99 | via pincer p50 | via pincer p99 | added at p50 | turns/s direct | turns/s via pincer |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for w, d, p in rows:
            ms = lambda v: "%.2f ms" % (v * 1000)
            print("| %d | %s | %s | %s | %s | %s | %.0f | %.0f |" % (
                w, ms(percentile(d, 50)), ms(percentile(d, 99)), ms(percentile(p, 50)),
                ms(percentile(p, 99)), ms(percentile(p, 50) - percentile(d, 50)),
                len(d) / args.duration, len(p) / args.duration))
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
