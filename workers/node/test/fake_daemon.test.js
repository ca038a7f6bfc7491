// pincer-worker.js against an in-process fake daemon: node --test test/
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterEach, beforeEach, describe, test } from "node:test";
import { RequestError, TaskCancelled, TaskError, Worker, WaitTimeout, jsonDepthExceeds, parseAddrs } from "../pincer-worker.js";

const quiet = { info() {}, warn() {}, error() {} };

/** Accepts worker connections on a loopback port and speaks lines. */
class FakeDaemon {
  static async start(tlsOptions = null) {
    const d = new FakeDaemon();
    d.server = tlsOptions
      ? tls.createServer(tlsOptions, (sock) => d._accepted(sock))
      : net.createServer((sock) => d._accepted(sock));
    await new Promise((r) => d.server.listen(0, "127.0.0.1", r));
    d.addr = `127.0.0.1:${d.server.address().port}`;
    return d;
  }

  constructor() {
    this.pending = [];
    this.waiting = [];
  }

  _accepted(sock) {
    const peer = new Peer(sock);
    const w = this.waiting.shift();
    if (w) w(peer);
    else this.pending.push(peer);
  }

  /** The next connection, its hello read and answered with `welcome`; with
   * acks: false it never answers a heartbeat (a frozen daemon). */
  async accept(welcome = {}, { acks = true } = {}) {
    const peer = this.pending.shift() ?? (await new Promise((r) => this.waiting.push(r)));
    peer.acks = acks;
    const hello = await peer.recv();
    if (welcome !== null) peer.send({ type: "welcome", id: "w1", heartbeat_ms: 100, ...welcome });
    return [peer, hello];
  }

  close() {
    this.server.close();
  }
}

/** One worker connection. It answers each heartbeat with heartbeat_ack (as
 * pincerd does when the hello asks), unless `acks` is false. */
class Peer {
  constructor(sock) {
    this.sock = sock;
    this.acks = true;
    this.lines = [];
    this.readers = [];
    this.closed = false;
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("data", (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (msg.type === "heartbeat" && this.acks) this.send({ type: "heartbeat_ack" }); // before the test sees it
        this._push(msg);
      }
    });
    sock.on("close", () => {
      this.closed = true;
      this._push(null);
    });
    sock.on("error", () => {});
  }

  _push(msg) {
    this.lines.push(msg);
    while (this.readers.length && this.lines.length) this.readers.shift()();
  }

  send(msg) {
    this.sock.write((typeof msg === "string" ? msg : JSON.stringify(msg)) + "\n");
  }

  /** The worker's next line (heartbeats skipped unless asked); null once it closed. */
  async recv({ heartbeats = false } = {}) {
    for (;;) {
      if (!this.lines.length) await new Promise((r) => this.readers.push(r));
      const msg = this.lines.shift();
      if (msg === null) {
        this.lines.unshift(null);
        return null;
      }
      if (heartbeats || msg.type !== "heartbeat") return msg;
    }
  }

  /** Reads the worker's lines until it closes the connection; resolves to them. */
  async closedByWorker() {
    const lines = [];
    for (let msg; (msg = await this.recv({ heartbeats: true })) !== null; ) lines.push(msg);
    return lines;
  }

  close() {
    this.sock.destroy();
  }
}

async function handler(task) {
  const p = task.payload;
  if (p === "boom") throw new Error("boom");
  if (p === "permanent") throw new TaskError("bad payload", { retryable: false });
  if (p === "bigint") return 1n;
  if (p === "progress") {
    task.progress({ step: 1 });
    return "done";
  }
  if (p === "usage") {
    task.reportUsage({ input: 100, output: 20, cost: 0.5, model: "m1" });
    return "counted";
  }
  if (p === "gate") return gate.then(() => "opened");
  if (p === "wait-cancel") {
    await new Promise((r) => task.signal.addEventListener("abort", r));
    return "too late";
  }
  if (p === "plan") {
    const child = await task.submit("part", { skills: ["leaf"], priority: 2 });
    const seen = [];
    const end = await task.wait(child, { onProgress: (d) => seen.push(d) });
    const both = await task.submitAndWait("part 2", { skills: ["leaf"] });
    return [child, end.output, seen, both.output];
  }
  if (p === "plan-refused") {
    try {
      await task.submit("x", { parent: "t0" });
    } catch (e) {
      if (e instanceof RequestError) return e.code;
      throw e;
    }
  }
  if (p === "plan-cancelled") {
    try {
      await task.wait("t5");
    } catch (e) {
      if (e instanceof TaskCancelled) return "woke";
      throw e;
    }
  }
  if (p === "plan-timeout") {
    try {
      await task.wait("t5", { timeout: 20 });
    } catch (e) {
      if (!(e instanceof WaitTimeout)) throw e;
      return (await task.wait("t5")).state;
    }
  }
  if (typeof p === "string" && p.startsWith("nest:")) {
    let out = [];
    for (let i = 1; i < Number(p.slice(5)); i++) out = [out];
    return out;
  }
  if (typeof p === "string" && p.startsWith("block:")) {
    const until = performance.now() + Number(p.slice(6));
    while (performance.now() < until); // synchronous work: the event loop stalls
    return p;
  }
  if (typeof p === "string" && p.startsWith("hold:")) {
    await new Promise((r) => setTimeout(r, Number(p.slice(5))));
    return p;
  }
  return p;
}

// "gate" tasks run until openGate() is called.
let openGate = null;
let gate = null;
const newGate = () => {
  gate = new Promise((r) => (openGate = r));
};

describe("worker against a fake daemon", () => {
  let daemon, worker, done, peer, hello;
  const task = (id, payload) =>
    peer.send({ type: "task", id, skills: ["echo"], payload, attempt: 1, session: null, deadline_ms: null });

  beforeEach(async () => {
    daemon = await FakeDaemon.start();
    worker = new Worker(handler, {
      skills: ["echo"], capacity: 2, name: "node-test", addr: daemon.addr, token: "tok",
      labels: { k: "v" }, logger: quiet,
    });
    done = worker.run();
    [peer, hello] = await daemon.accept();
  });

  afterEach(async () => {
    worker.stop();
    await done;
    peer.close();
    daemon.close();
  });

  test("hello", () => {
    assert.deepEqual(hello, {
      type: "hello", role: "worker", proto: 1, token: "tok", name: "node-test", skills: ["echo"],
      capacity: 2, confirms_stop: true, heartbeat_ack: true, labels: { k: "v" }, tasks: [],
    });
  });

  test("heartbeats at the daemon's interval, with load", async () => {
    const beat = await peer.recv({ heartbeats: true });
    assert.equal(beat.type, "heartbeat");
    assert.ok(beat.load.rss_bytes > 0);
    assert.equal((await peer.recv({ heartbeats: true })).type, "heartbeat");
  });

  test("success, failures, usage", async () => {
    task("t1", { a: [1, 2] });
    assert.deepEqual(await peer.recv(), { type: "result", id: "t1", attempt: 1, ok: true, output: { a: [1, 2] } });
    task("t2", "boom");
    assert.deepEqual(await peer.recv(), {
      type: "result", id: "t2", attempt: 1, ok: false, error: "Error: boom", retryable: true,
    });
    task("t3", "permanent");
    assert.deepEqual(await peer.recv(), {
      type: "result", id: "t3", attempt: 1, ok: false, error: "bad payload", retryable: false,
    });
    task("t4", "bigint");
    const r = await peer.recv();
    assert.equal(r.ok, false);
    assert.equal(r.retryable, false);
    task("t5", "usage");
    assert.deepEqual((await peer.recv()).usage, { input: 100, output: 20, total: 120, cost: 0.5, model: "m1" });
  });

  test("progress then result", async () => {
    task("t1", "progress");
    assert.deepEqual(await peer.recv(), { type: "progress", id: "t1", attempt: 1, data: { step: 1 } });
    assert.equal((await peer.recv()).output, "done");
  });

  test("output nested past the daemon's depth fails without retry", async () => {
    task("t1", "nest:63");
    assert.equal((await peer.recv()).ok, true);
    task("t2", "nest:64");
    const r = await peer.recv();
    assert.equal(r.ok, false);
    assert.equal(r.retryable, false);
    assert.match(r.error, /output too deep/);
  });

  test("cancel aborts the signal and sends stopped, not a result", async () => {
    task("t1", "wait-cancel");
    peer.send({ type: "cancel", id: "t1", attempt: 1, reason: "timed_out" });
    assert.deepEqual(await peer.recv(), { type: "stopped", id: "t1", attempt: 1 });
    task("t2", "after");
    assert.equal((await peer.recv()).id, "t2");
    peer.send({ type: "cancel", id: "t9", attempt: 3, reason: "timed_out" });
    assert.deepEqual(await peer.recv(), { type: "stopped", id: "t9", attempt: 3 });
  });

  test("over capacity is handed back", async () => {
    task("a", "hold:100");
    task("b", "hold:100");
    task("c", "x");
    assert.deepEqual(await peer.recv(), {
      type: "result", id: "c", ok: false, error: "worker is at capacity (2)", retryable: true,
    });
    assert.deepEqual(new Set([(await peer.recv()).id, (await peer.recv()).id]), new Set(["a", "b"]));
  });

  test("bad lines are ignored", async () => {
    peer.send("not json");
    peer.send({ type: "surprise" });
    peer.send("[1]");
    peer.send({ type: "error", code: "unknown_task", message: "no task t0" });
    task("t1", "still here");
    assert.equal((await peer.recv()).output, "still here");
  });

  test("a handler submits children and waits for them", async () => {
    task("t1", "plan");
    const submit = await peer.recv();
    const req = submit.req;
    delete submit.req;
    assert.deepEqual(submit, { type: "submit", skills: ["leaf"], payload: "part", parent: "t1", priority: 2 });
    // The daemon's own lines interleave with answers: still served.
    task("t9", "between");
    assert.equal((await peer.recv()).output, "between");
    peer.send({ type: "ok", req, id: "t2", existing: false });
    const wait = await peer.recv();
    assert.equal(wait.type, "wait");
    assert.equal(wait.id, "t2");
    assert.notEqual(wait.req, req);
    peer.send({ type: "progress", req: wait.req, id: "t2", attempt: 1, data: { step: 1 } });
    peer.send({ type: "end", req: wait.req, id: "t2", state: "succeeded", output: "PART", error: null, attempts: 1 });
    const both = await peer.recv();
    assert.deepEqual([both.type, both.wait, both.parent], ["submit", true, "t1"]);
    peer.send({ type: "ok", req: both.req, id: "t3", existing: false });
    peer.send({ type: "end", req: both.req, id: "t3", state: "succeeded", output: "PART 2", error: null, attempts: 1 });
    assert.deepEqual(await peer.recv(), {
      type: "result", id: "t1", attempt: 1, ok: true, output: ["t2", "PART", [{ step: 1 }], "PART 2"],
    });
  });

  test("a refused request rejects with RequestError", async () => {
    task("t1", "plan-refused");
    const submit = await peer.recv();
    assert.equal(submit.parent, "t0");
    peer.send({ type: "error", req: submit.req, code: "unknown_task", message: "no task t0 runs here" });
    assert.equal((await peer.recv()).output, "unknown_task");
  });

  test("a cancel wakes a pending wait", async () => {
    task("t1", "plan-cancelled");
    assert.equal((await peer.recv()).type, "wait");
    peer.send({ type: "cancel", id: "t1", attempt: 1, reason: "cancelled" });
    assert.deepEqual(await peer.recv(), { type: "stopped", id: "t1", attempt: 1 });
  });

  test("a wait that timed out goes on without a second request", async () => {
    task("t1", "plan-timeout");
    const wait = await peer.recv();
    // The handler gives up after 20 ms and waits again on the same request.
    await new Promise((r) => setTimeout(r, 100));
    peer.send({ type: "end", req: wait.req, id: "t5", state: "failed", output: null, error: "x", attempts: 1 });
    assert.equal((await peer.recv()).output, "failed");
  });

  test("drain finishes the running task, refuses new ones, then run() returns", async () => {
    task("t1", "hold:50");
    peer.send({ type: "drain" });
    task("t2", "late");
    assert.equal((await peer.recv()).error, "worker is draining");
    assert.equal((await peer.recv()).id, "t1");
    assert.equal(await peer.recv(), null);
    await done;
  });

  test("its own drain waits for drained", async () => {
    // Its first heartbeat follows the welcome: it is connected.
    assert.equal((await peer.recv({ heartbeats: true })).type, "heartbeat");
    task("t1", "hold:50");
    worker.drain();
    assert.deepEqual(await peer.recv(), { type: "drain" });
    assert.equal((await peer.recv()).id, "t1");
    peer.send({ type: "drained" });
    assert.equal(await peer.recv(), null);
    await done;
  });

  test("reconnects after a loss keeping its tasks, listed in the hello", async () => {
    newGate();
    task("t1", "gate");
    peer.close();
    const [again, hello2] = await daemon.accept();
    assert.deepEqual(hello2.tasks, [{ id: "t1", attempt: 1 }]);
    peer = again;
    openGate(); // pincerd adopted it: its result comes on the new connection
    assert.deepEqual(await peer.recv(), { type: "result", id: "t1", attempt: 1, ok: true, output: "opened" });
    task("t2", "fresh");
    assert.equal((await peer.recv()).id, "t2");
  });

  test("a result sent to a daemon that went silent is listed in the next hello and sent again", { timeout: 20000 }, async () => {
    peer.close();
    // A daemon that welcomes, reads the result, then answers nothing.
    let hello2;
    [peer, hello2] = await daemon.accept({}, { acks: false });
    assert.equal(hello2.heartbeat_ack, true);
    task("t1", "done");
    const sent = await peer.recv();
    assert.deepEqual(sent, { type: "result", id: "t1", attempt: 1, ok: true, output: "done" });
    await peer.closedByWorker(); // it leaves the silent daemon
    let hello3;
    [peer, hello3] = await daemon.accept();
    assert.deepEqual(hello3.tasks, [{ id: "t1", attempt: 1 }]);
    assert.deepEqual(await peer.recv(), sent);
    // Stored there after all: not adopted, so the kept result is dropped.
    peer.send({ type: "cancel", id: "t1", attempt: 1, reason: "not_adopted" });
    assert.deepEqual(await peer.recv(), { type: "stopped", id: "t1", attempt: 1 });
  });

  test("a result acked an interval after it was sent is not listed again", { timeout: 20000 }, async () => {
    task("t1", "done");
    while ((await peer.recv({ heartbeats: true })).type !== "result");
    // Heartbeats go an interval apart, so the third one after the result
    // went a whole interval after it, and its ack confirms the result.
    for (let beats = 0; beats < 3; ) if ((await peer.recv({ heartbeats: true })).type === "heartbeat") beats++;
    // The worker reads lines in order: the answer to this cancel comes once
    // it has read that ack.
    peer.send({ type: "cancel", id: "t9", attempt: 1, reason: "cancelled" });
    assert.deepEqual(await peer.recv(), { type: "stopped", id: "t9", attempt: 1 });
    peer.close();
    let hello2;
    [peer, hello2] = await daemon.accept();
    assert.deepEqual(hello2.tasks, []);
    peer.send({ type: "cancel", id: "t8", attempt: 1, reason: "cancelled" });
    assert.deepEqual(await peer.recv(), { type: "stopped", id: "t8", attempt: 1 });
  });

  test("a handler that blocks the event loop does not make an answering daemon look silent", { timeout: 20000 }, async () => {
    task("t1", "block:600"); // six heartbeat intervals
    assert.equal((await peer.recv()).output, "block:600");
    // Still the same connection: a cancel is answered on it.
    peer.send({ type: "cancel", id: "t9", attempt: 1, reason: "cancelled" });
    assert.deepEqual(await peer.recv(), { type: "stopped", id: "t9", attempt: 1 });
  });

  test("a task pincerd does not adopt is dropped", async () => {
    task("t1", "wait-cancel");
    peer.close();
    const [again, hello2] = await daemon.accept();
    assert.deepEqual(hello2.tasks, [{ id: "t1", attempt: 1 }]);
    peer = again;
    peer.send({ type: "cancel", id: "t1", attempt: 1, reason: "not_adopted" });
    assert.deepEqual(await peer.recv(), { type: "stopped", id: "t1", attempt: 1 });
  });
});

describe("addresses", () => {
  test("an empty element is refused", () => {
    assert.throws(() => parseAddrs("a:1,,b:2"), /empty address/);
    assert.deepEqual(parseAddrs("a:1, b:2"), ["a:1", "b:2"]);
  });

  test("a refused address is passed over, and a standby sends the worker to the leader it names", async () => {
    const standby = await FakeDaemon.start();
    const leader = await FakeDaemon.start();
    const dead = net.createServer();
    await new Promise((r) => dead.listen(0, "127.0.0.1", r));
    const deadAddr = `127.0.0.1:${dead.address().port}`;
    dead.close();
    const worker = new Worker(handler, { addr: `${deadAddr},${standby.addr}`, logger: quiet, name: "n" });
    const done = worker.run();
    const [peer] = await standby.accept(null);
    peer.send({ type: "error", code: "not_leader", message: "a standby", leader: leader.addr });
    const [lead, hello] = await leader.accept();
    assert.equal(hello.name, "n");
    lead.send({ type: "task", id: "t1", payload: "x", attempt: 1 });
    assert.equal((await lead.recv()).output, "x");
    worker.stop();
    await done;
    lead.close();
    peer.close();
    standby.close();
    leader.close();
  });

  test("a daemon that answers no heartbeat is left for the next address", { timeout: 20000 }, async () => {
    const frozen = await FakeDaemon.start();
    const other = await FakeDaemon.start();
    const worker = new Worker(handler, { addr: `${frozen.addr},${other.addr}`, logger: quiet, name: "n" });
    const done = worker.run();
    // Welcomes, then never answers a heartbeat (SIGSTOP, a paused VM): its
    // socket stays open, and the worker leaves it all the same.
    const [silent, hello] = await frozen.accept({ heartbeat_ms: 100 }, { acks: false });
    assert.equal(hello.heartbeat_ack, true);
    await silent.closedByWorker();
    const [peer, hello2] = await other.accept();
    assert.equal(hello2.heartbeat_ack, true);
    peer.send({ type: "task", id: "t1", payload: "served", attempt: 1 });
    assert.equal((await peer.recv()).output, "served");
    worker.stop();
    await done;
    peer.close();
    silent.close();
    frozen.close();
    other.close();
  });

  test("the TLS key without a CA is refused", () => {
    assert.throws(() => new Worker(handler, { tlsCert: "c.pem", tlsKey: "k.pem" }), /need tlsCa/);
    assert.throws(() => new Worker(handler, { tlsCa: "/nonexistent/ca.pem" }), /ENOENT/);
  });

  test("speaks TLS with PINCER_TLS_CA, checking that the certificate names the host", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pincer-node-tls-"));
    const key = path.join(dir, "key.pem");
    const cert = path.join(dir, "cert.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
      "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    const daemon = await FakeDaemon.start({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) });
    process.env.PINCER_TLS_CA = cert;
    let worker;
    try {
      worker = new Worker(handler, { addr: daemon.addr, logger: quiet, name: "tls" });
    } finally {
      delete process.env.PINCER_TLS_CA;
    }
    const done = worker.run();
    const [peer, hello] = await daemon.accept();
    assert.equal(hello.name, "tls");
    peer.send({ type: "task", id: "t1", payload: "over tls", attempt: 1 });
    assert.equal((await peer.recv()).output, "over tls");
    worker.stop();
    await done;
    peer.close();
    daemon.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("depth check", () => {
    assert.equal(jsonDepthExceeds([[]], 2), false);
    assert.equal(jsonDepthExceeds([[[]]], 2), true);
    assert.equal(jsonDepthExceeds("x", 0), false);
  });
});
