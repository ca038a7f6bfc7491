// A pincer worker in plain Node.js (20+, no dependencies), written from
// docs/protocol.md. See README.md.
//
//   import { runWorker } from "pincer-worker";
//   await runWorker(async (task) => String(task.payload).toUpperCase(), { skills: ["upper"] });
//
// A handler's return value (any JSON value) is the task's output. Throwing
// new TaskError(msg, { retryable: false }) fails the task for good; any other
// error fails this attempt and lets pincerd retry it.

import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import tls from "node:tls";

export const PROTO = 1;
export const DEFAULT_ADDR = "127.0.0.1:7878";
const MAX_LINE_BYTES = 17 << 20; // the daemon's default frame limit, plus a task's own fields
const HANDSHAKE_MS = 10000;
const MAX_UNCONFIRMED = 4096; // results kept per connection until pincerd has surely stored them

/** Throw from a handler to fail a task with a message of your choosing. */
export class TaskError extends Error {
  constructor(message, { retryable = true } = {}) {
    super(message);
    this.name = "TaskError";
    this.retryable = retryable;
  }
}

/** A subtask call (submit, wait, ...) of a task that was cancelled, timed
 * out or lost with the connection while it waited. */
export class TaskCancelled extends Error {
  constructor(message) {
    super(message);
    this.name = "TaskCancelled";
  }
}

/** pincerd refused a request (an `error` answer); `code` is its code. */
export class RequestError extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = "RequestError";
    this.code = code;
  }
}

/** A wait that did not end within its timeout; it stays open. */
export class WaitTimeout extends Error {
  constructor(message) {
    super(message);
    this.name = "WaitTimeout";
  }
}

/** True when arrays and objects in `value` nest more than `limit` levels. */
export function jsonDepthExceeds(value, limit) {
  const stack = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop();
    if (v === null || typeof v !== "object") continue;
    if (depth > limit) return true;
    for (const c of Array.isArray(v) ? v : Object.values(v)) stack.push([c, depth + 1]);
  }
  return false;
}

/** The parts of an address list "A,B" (a leader and its standbys). */
export function parseAddrs(addr) {
  const addrs = addr.split(",").map((a) => a.trim());
  if (addrs.some((a) => !a)) throw new Error(`an empty address in ${JSON.stringify(addr)}`);
  return addrs;
}

function connect(addr, tlsOptions) {
  if (addr.startsWith("unix:")) return net.connect({ path: addr.slice(5) }); // always plain
  const colon = addr.lastIndexOf(":");
  const host = addr.slice(0, colon).replace(/^\[|\]$/g, "");
  const port = Number(addr.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port)) throw new Error(`bad address ${JSON.stringify(addr)}`);
  if (!tlsOptions) {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    return sock;
  }
  // The certificate must name `host` (a DNS name or an IP address).
  const options = { host, port, ...tlsOptions };
  if (!net.isIP(host)) options.servername = host;
  return tls.connect(options);
}

class Call {
  constructor(req, task, waitsEnd) {
    this.req = req;
    this.task = task;
    this.waitsEnd = waitsEnd; // wait, watch, submit with wait: true
    this.onProgress = null;
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.promise.catch(() => {}); // a wait given up on (timeout) may end unheard
  }
}

/** One task as the handler sees it. `signal` (an AbortSignal) aborts when
 * pincerd cancels the task or times it out, or the worker stops. A lost
 * connection does not: the task runs on, for pincerd to adopt. */
export class Task {
  constructor(msg, worker, conn) {
    this.id = msg.id;
    this.payload = msg.payload ?? null;
    this.attempt = msg.attempt ?? 1;
    this.session = msg.session ?? null;
    this.skills = msg.skills ?? [];
    this.deadlineMs = msg.deadline_ms ?? null;
    this.usage = null;
    this._controller = new AbortController();
    this.signal = this._controller.signal;
    this._worker = worker;
    this._conn = conn;
    this._calls = new Set();
    this._waits = new Map(); // child id -> the Call of a wait that timed out
  }

  get cancelled() {
    return this.signal.aborted;
  }

  _cancel(reason) {
    if (!this.signal.aborted) this._controller.abort(new TaskCancelled(`task ${this.id} ${reason}`));
    for (const call of this._calls) {
      this._worker._calls.delete(call.req);
      call.reject(new TaskCancelled(`task ${this.id} ${reason}`));
    }
    this._calls.clear();
  }

  /** Reports progress (any JSON value): shown by `pincerctl status`, and
   * streamed to whoever waits on the task. */
  progress(data) {
    if (!this.cancelled) {
      this._conn.send({ type: "progress", id: this.id, attempt: this.attempt, data });
    }
  }

  /** Adds tokens (and cost, model) this attempt used; sent with its result. */
  reportUsage({ input = 0, output = 0, total = null, cost = null, model = null } = {}) {
    for (const [name, n] of [["input", input], ["output", output], ["total", total]]) {
      if (n !== null && !(Number.isInteger(n) && n >= 0)) {
        throw new RangeError(`usage ${name} must be a non-negative integer`);
      }
    }
    if (cost !== null && !(typeof cost === "number" && cost >= 0 && Number.isFinite(cost))) {
      throw new RangeError("usage cost must be a non-negative number");
    }
    if (model !== null && typeof model !== "string") throw new TypeError("usage model must be a string");
    const u = this.usage ?? { input: 0, output: 0, total: 0 };
    u.input += input;
    u.output += output;
    u.total += total === null ? input + output : total;
    if (cost !== null) u.cost = (u.cost ?? 0) + cost;
    if (model !== null) u.model = model;
    this.usage = u;
  }

  /** Sends a client request (an object with its `type`) on the worker's
   * connection; resolves to its `ok`, or with waitsEnd its `end`. Rejects
   * with RequestError (an `error` answer) or TaskCancelled. */
  request(msg, { waitsEnd = false, onProgress = null, timeout = null } = {}) {
    const call = this._worker._sendCall(this, msg, waitsEnd);
    return this._await(call, timeout, onProgress);
  }

  _await(call, timeout, onProgress) {
    call.onProgress = onProgress;
    if (timeout === null || timeout === undefined) return call.promise;
    let timer;
    const timedOut = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new WaitTimeout(`no answer within ${timeout} ms`)), timeout);
    });
    return Promise.race([call.promise, timedOut]).finally(() => clearTimeout(timer));
  }

  /** Submits a child task (its parent: this task); resolves to its id, or
   * with `wait: true` to its end. Other fields (priority, timeout,
   * max_attempts, session, key, backoff) go in the submit as they are. */
  submit(payload = null, { skills = [], wait = false, onProgress = null, ...fields } = {}) {
    const msg = { type: "submit", skills: [...skills], payload, parent: this.id, ...fields };
    if (msg.parent === null) delete msg.parent;
    if (wait) {
      msg.wait = true;
      return this.request(msg, { waitsEnd: true, onProgress });
    }
    return this.request(msg).then((ok) => ok.id);
  }

  /** submit(..., { wait: true }): a child's end. */
  submitAndWait(payload = null, options = {}) {
    return this.submit(payload, { ...options, wait: true });
  }

  /** Resolves to a task's end ({id, state, output, error, attempts, ...});
   * onProgress(data) is called with each progress meanwhile. After a
   * WaitTimeout (timeout in ms) the wait stays open: wait again to go on. */
  async wait(taskId, { timeout = null, onProgress = null } = {}) {
    let call = this._waits.get(taskId);
    this._waits.delete(taskId);
    if (!call) call = this._worker._sendCall(this, { type: "wait", id: taskId }, true);
    try {
      return await this._await(call, timeout, onProgress);
    } catch (e) {
      if (e instanceof WaitTimeout) this._waits.set(taskId, call);
      throw e;
    }
  }

  /** The `status` of a task. */
  status(taskId) {
    return this.request({ type: "status", id: taskId });
  }

  /** Cancels a task (a child, say). */
  cancelTask(taskId) {
    return this.request({ type: "cancel", id: taskId });
  }

  /** The daemon's `workers` answer. */
  workers() {
    return this.request({ type: "workers" });
  }
}

class Connection {
  constructor(sock) {
    this.sock = sock;
    this.closed = false;
    this.intervalMs = 5000; // the welcome's heartbeat_ms
    this.lastHeard = performance.now(); // when the daemon's last line came
    // Results sent here that pincerd may not have stored yet, oldest first:
    // { at, id, attempt, result }. Moved to Worker._unsent when it closes.
    this.unconfirmed = [];
  }

  /** Sends a task's result, kept until pincerd has surely stored it. */
  sendResult(id, attempt, result) {
    if (!this.send(result)) return false;
    this.unconfirmed.push({ at: performance.now(), id, attempt, result });
    if (this.unconfirmed.length > MAX_UNCONFIRMED) this.unconfirmed.shift();
    return true;
  }

  send(msg) {
    if (this.closed) return false;
    this.sock.write(JSON.stringify(msg) + "\n");
    return true;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.sock.end();
    this.sock.destroy();
  }
}

function defaultLogger() {
  const out = (level) => (...args) => console.error(`${new Date().toISOString()} ${level} pincer-worker:`, ...args);
  return { info: out("INFO"), warn: out("WARNING"), error: out("ERROR") };
}

export class Worker {
  constructor(handler, options = {}) {
    const env = process.env;
    this.handler = handler;
    this.skills = [...(options.skills ?? [])];
    this.capacity = Number(options.capacity ?? 1);
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new RangeError("capacity must be a positive integer");
    this.name = options.name ?? `node@${os.hostname()}`;
    this.addr = options.addr || env.PINCER_ADDR || DEFAULT_ADDR;
    this.addrs = parseAddrs(this.addr); // tried in turn; a standby names the leader
    this.token = options.token ?? env.PINCER_TOKEN ?? "";
    this.labels = options.labels ?? {};
    this.spawnId = env.PINCER_SPAWN_ID || null;
    this.maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
    this.log = options.logger ?? defaultLogger();
    const ca = options.tlsCa || env.PINCER_TLS_CA || null;
    const cert = options.tlsCert || env.PINCER_TLS_CERT || null;
    const key = options.tlsKey || env.PINCER_TLS_KEY || null;
    if ((cert || key) && !ca) throw new Error("tlsCert and tlsKey need tlsCa");
    if (!cert !== !key) throw new Error("tlsCert and tlsKey go together");
    // Files are read once, here: a missing one fails at once.
    this.tls = ca
      ? { ca: fs.readFileSync(ca), ...(cert ? { cert: fs.readFileSync(cert), key: fs.readFileSync(key) } : {}), minVersion: "TLSv1.2" }
      : null;
    this._nextAddr = 0;
    this._leader = null;
    this.target = this.addrs[0];
    this._stopped = false;
    this._draining = false;
    this._selfDraining = false;
    this._running = new Map(); // task id -> Task; they run on across a reconnect
    // Results of tasks that ended while no daemon was connected: task id ->
    // { attempt, result }, listed in the next hello and sent after welcome.
    this._unsent = new Map();
    this._stopping = new Map(); // cancelled tasks whose handler has not returned
    this._calls = new Map(); // req -> Call
    this._nextReq = 0;
    this._conn = null;
    this._welcomed = false;
    this._wake = null;
    this._maxJsonDepth = 64;
    this._lastCpu = null;
  }

  /** Leaves run() at once; running tasks are abandoned (pincerd requeues them). */
  stop() {
    this._stopped = true;
    this._conn?.close();
    this._wake?.();
  }

  /** Asks pincerd for no new tasks, lets the running ones finish, and leaves
   * run() once pincerd answers "drained". Without a connection it is stop(). */
  drain() {
    if (this._selfDraining || this._stopped) return;
    const conn = this._conn;
    if (!conn || conn.closed || !this._welcomed) {
      this.stop();
      return;
    }
    this.log.info("draining: no new tasks; finishing the running ones, then exiting");
    this._selfDraining = true;
    this._draining = true;
    if (!conn.send({ type: "drain" })) this.stop();
  }

  /** Serves tasks until drained or stopped, reconnecting (with jittered
   * exponential backoff) whenever the daemon goes away. */
  async run() {
    let delay = 100;
    while (!this._stopped) {
      let welcomed = false;
      const following = this._leader !== null;
      this.target = this._leader ?? this.addrs[this._nextAddr % this.addrs.length];
      this._leader = null;
      try {
        welcomed = await this._serveOneConnection();
      } catch (e) {
        this.log.warn(`connection to ${this.target}: ${e.message}`);
      }
      this._abandonTasks();
      if (this._draining || this._stopped) return;
      if (!following) this._nextAddr += 1;
      if (welcomed) delay = 100;
      else if (this._leader !== null && !following) continue; // to the leader a standby named
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay / 2 + (Math.random() * delay) / 2);
        this._wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this._wake = null;
      delay = Math.min(delay * 2, 5000);
    }
  }

  _serveOneConnection() {
    return new Promise((resolve, reject) => {
      let sock;
      try {
        sock = connect(this.target, this.tls);
      } catch (e) {
        reject(e);
        return;
      }
      const conn = (this._conn = new Connection(sock));
      if (this._stopped) conn.close();
      let welcomed = false;
      let failure = null;
      let heartbeat = null;
      let buf = "";
      const handshake = setTimeout(() => {
        failure = new Error("no welcome within 10 s");
        conn.close();
      }, HANDSHAKE_MS);
      sock.setEncoding("utf8");
      sock.on(this.tls ? "secureConnect" : "connect", () => {
        // heartbeat_ack: a daemon that stops answering (frozen, cut off) is
        // gone, though its socket may stay open for good.
        const hello = {
          type: "hello", role: "worker", proto: PROTO, token: this.token, name: this.name,
          skills: this.skills, capacity: this.capacity, confirms_stop: true, heartbeat_ack: true,
        };
        if (Object.keys(this.labels).length) hello.labels = this.labels;
        if (this.spawnId) hello.spawn_id = this.spawnId;
        // The tasks still ours from an earlier connection: pincerd adopts
        // them, or tells us to drop them (cancel, reason not_adopted), rather
        // than starting them again (docs/protocol.md).
        const held = [...this._running.values()].map((t) => ({ id: t.id, attempt: t.attempt }));
        for (const [id, u] of this._unsent) held.push({ id, attempt: u.attempt });
        hello.tasks = held.slice(0, this.capacity);
        if (held.length) this.log.info(`hello lists ${held.length} task(s) still held here`);
        conn.send(hello);
      });
      const onLine = (line) => {
        conn.lastHeard = performance.now();
        if (welcomed) {
          this._onLine(conn, line);
          return;
        }
        clearTimeout(handshake);
        let welcome = null;
        try {
          welcome = JSON.parse(line);
        } catch {}
        if (welcome?.code === "not_leader") {
          const leader = welcome.leader;
          this.log.info(`${this.target} is a standby${leader ? `; the leader serves on ${leader}` : ""}`);
          if (typeof leader === "string" && leader) this._leader = leader;
          conn.close();
          return;
        }
        if (welcome?.type !== "welcome") {
          this.log.error(`daemon refused the handshake: ${line.slice(0, 200)}`);
          conn.close();
          return;
        }
        welcomed = this._welcomed = true;
        this.log.info(`connected to ${this.target} as ${welcome.id}`);
        for (const task of this._running.values()) task._conn = conn; // their lines go here now
        for (const [id, u] of this._unsent) conn.sendResult(id, u.attempt, u.result);
        this._unsent.clear();
        const depth = welcome.max_json_depth;
        this._maxJsonDepth = Number.isInteger(depth) && depth >= 2 ? depth : 64;
        conn.intervalMs = Math.max(Number(welcome.heartbeat_ms) || 5000, 10);
        let lastBeat = performance.now();
        const beat = () => {
          const now = performance.now();
          // A tick this late means the event loop was blocked (a handler's
          // synchronous work): the daemon's answers may be waiting unread.
          const stalled = now - lastBeat > 1.5 * conn.intervalMs;
          lastBeat = now;
          const silent = now - conn.lastHeard;
          if (silent > 1.5 * conn.intervalMs && !stalled) {
            // It answers every heartbeat within milliseconds: frozen or cut
            // off, with a socket that may stay open for good.
            this.log.warn(`no answer from the daemon at ${this.target} for ${Math.round(silent)} ms (it answers every heartbeat); leaving it`);
            conn.close(); // "close" follows: run() reconnects
            return;
          }
          conn.send({ type: "heartbeat", load: this._load() });
        };
        beat();
        heartbeat = setInterval(beat, conn.intervalMs);
      };
      sock.on("data", (chunk) => {
        buf += chunk;
        let nl;
        while (!conn.closed && (nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).replace(/\r$/, "");
          buf = buf.slice(nl + 1);
          if (line) onLine(line);
        }
        if (buf.length > this.maxLineBytes) {
          this.log.error(`the daemon sent a line longer than ${this.maxLineBytes} bytes`);
          conn.close();
        }
      });
      sock.on("error", (e) => {
        failure = failure ?? e;
      });
      sock.on("close", () => {
        conn.closed = true;
        clearTimeout(handshake);
        clearInterval(heartbeat);
        this._welcomed = false;
        // Results pincerd may never have read or stored go again as if they
        // ended while disconnected: the next hello lists their tasks. One
        // that did store them answers cancel not_adopted.
        const kept = this._stopped || this._draining ? [] : conn.unconfirmed; // else dropped anyway
        conn.unconfirmed = [];
        for (const u of kept) {
          if (!this._running.has(u.id)) this._unsent.set(u.id, { attempt: u.attempt, result: u.result }); // else a later attempt runs here
        }
        if (kept.length) {
          this.log.info(`${kept.length} result(s) sent to ${this.target} may not be stored there; they go again after the next welcome`);
        }
        if (failure && !welcomed && !this._stopped && this._leader === null) reject(failure);
        else resolve(welcomed);
      });
    });
  }

  _load() {
    const load = {};
    const now = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const used = cpu.user + cpu.system; // µs
    if (this._lastCpu && now > this._lastCpu[0]) {
      const cores = (used - this._lastCpu[1]) / (Number(now - this._lastCpu[0]) / 1000);
      load.cpu = Math.round(Math.max(0, cores) * 1000) / 1000;
    }
    this._lastCpu = [now, used];
    load.rss_bytes = process.memoryUsage.rss();
    return load;
  }

  _sendCall(task, msg, waitsEnd) {
    if (task.cancelled) throw new TaskCancelled(`task ${task.id} was cancelled`);
    const call = new Call(++this._nextReq, task, waitsEnd);
    if (!task._conn.send({ ...msg, req: call.req })) {
      throw new TaskCancelled(`task ${task.id}: the connection to pincerd was lost`);
    }
    this._calls.set(call.req, call);
    task._calls.add(call);
    return call;
  }

  _onAnswer(msg) {
    const call = this._calls.get(msg.req);
    if (!call) return; // an answer to no pending request (a wait given up on, say)
    const last = () => {
      this._calls.delete(call.req);
      call.task._calls.delete(call);
    };
    if (msg.type === "progress") {
      if (call.onProgress) {
        try {
          call.onProgress(msg.data, msg);
        } catch (e) {
          this.log.warn(`onProgress threw: ${e.message}`);
        }
      }
    } else if (msg.type === "error") {
      last();
      call.reject(new RequestError(msg.code, msg.message));
    } else if (msg.type === "ok" && call.waitsEnd) {
      call.ok = msg;
    } else {
      last();
      call.resolve(msg);
    }
  }

  _onLine(conn, line) {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      this.log.warn(`ignoring a bad line from the daemon: ${line.slice(0, 200)}`);
      return;
    }
    if (msg === null || typeof msg !== "object" || typeof msg.type !== "string") {
      this.log.warn(`ignoring a bad line from the daemon: ${line.slice(0, 200)}`);
      return;
    }
    const kind = msg.type;
    if (["ok", "error", "end", "progress"].includes(kind) && "req" in msg) {
      // An answer to a handler's own request (docs/protocol.md, "Subtasks").
      this._onAnswer(msg);
    } else if (kind === "heartbeat_ack") {
      // pincerd has read every line sent before that heartbeat; a result it
      // read a whole interval ago is stored (a commit takes milliseconds).
      const storedBefore = performance.now() - conn.intervalMs;
      let n = 0;
      while (n < conn.unconfirmed.length && conn.unconfirmed[n].at < storedBefore) n++;
      conn.unconfirmed.splice(0, n);
    } else if (kind === "task") {
      this._onTask(conn, msg);
    } else if (kind === "cancel") {
      const id = msg.id;
      this._unsent.delete(id); // ended while disconnected, not adopted: dropped
      // Its result is not wanted: never listed again.
      if (conn.unconfirmed.some((u) => u.id === id)) conn.unconfirmed = conn.unconfirmed.filter((u) => u.id !== id);
      let task = this._running.get(id);
      if (task && (msg.attempt ?? task.attempt) !== task.attempt) task = undefined; // another attempt
      if (task) {
        this._running.delete(id);
        this._stopping.set(id, task);
        this.log.info(`task ${id} attempt ${task.attempt} ${msg.reason ?? "cancelled"}`);
        task._cancel(msg.reason === "timed_out" ? "timed out" : "was cancelled");
      } else if (!this._stopping.has(id) && typeof id === "string") {
        // Not running here (its result crossed the cancel): stopped already.
        conn.send({ type: "stopped", id, attempt: msg.attempt ?? 1 });
      }
    } else if (kind === "drain") {
      this.log.info("draining");
      this._draining = true;
      if (!this._running.size && !this._stopping.size && !this._selfDraining) conn.close();
    } else if (kind === "drained") {
      if (this._selfDraining) {
        this.log.info("drained; exiting");
        conn.close();
      }
    } else if (kind === "error") {
      this.log.warn(`daemon error ${msg.code}: ${msg.message}`);
    }
  }

  _onTask(conn, msg) {
    if (typeof msg.id !== "string") {
      this.log.warn("ignoring a task without an id");
      return;
    }
    // A task sent before pincerd read our own drain is still ours.
    const refuse =
      this._draining && !this._selfDraining
        ? "worker is draining"
        : this._running.size + this._stopping.size >= this.capacity
          ? `worker is at capacity (${this.capacity})`
          : null;
    if (refuse) {
      conn.send({ type: "result", id: msg.id, ok: false, error: refuse, retryable: true });
      return;
    }
    const task = new Task(msg, this, conn);
    this._running.set(task.id, task);
    this._runTask(conn, task);
  }

  async _runTask(conn, task) {
    const failure = (error, retryable) => ({
      type: "result", id: task.id, attempt: task.attempt, ok: false, error, retryable,
    });
    let result;
    try {
      let output = await this.handler(task);
      if (output === undefined) output = null;
      result = { type: "result", id: task.id, attempt: task.attempt, ok: true, output };
      // Running it again would return the same thing: not retryable.
      let text;
      try {
        text = JSON.stringify(output);
      } catch (e) {
        text = undefined;
        result = failure(`output is not JSON-serializable: ${e.message}`, false);
      }
      if (text !== undefined && result.ok) {
        const limit = this._maxJsonDepth - 1; // the result object is level 1
        if (jsonDepthExceeds(JSON.parse(text), limit)) {
          result = failure(
            `output too deep: nested more than ${limit} levels (the daemon's limits.max_json_depth = ${this._maxJsonDepth}, less the result object)`,
            false,
          );
        }
      }
    } catch (e) {
      if (e instanceof TaskError) result = failure(e.message, e.retryable);
      else result = failure(`${e?.name ?? "Error"}: ${e?.message ?? String(e)}`, true);
    }
    const mine = this._running.get(task.id) === task;
    if (mine) this._running.delete(task.id);
    const stopped = this._stopping.get(task.id) === task;
    if (stopped) this._stopping.delete(task.id);
    if (task.usage !== null) result.usage = task.usage;
    conn = task._conn; // the connection now (a reconnect moves it)
    if (mine && !task.cancelled) {
      // No daemon now: kept for the next hello, and sent after it.
      if (!this._welcomed || !conn.sendResult(task.id, task.attempt, result)) this._unsent.set(task.id, { attempt: task.attempt, result });
    } else if (stopped) conn.send({ type: "stopped", id: task.id, attempt: task.attempt });
    if (this._draining && !this._running.size && !this._stopping.size && !this._selfDraining) conn.close();
  }

  _abandonTasks() {
    // Running tasks go on: the next hello lists them and pincerd adopts
    // them (docs/protocol.md). Not when we stop or drain: then handlers
    // give up, as do cancelled ones and pending calls (their answers will
    // not come: the connection is gone).
    const tasks = [...this._stopping.values()];
    this._stopping.clear();
    if (this._stopped || this._draining) {
      tasks.push(...this._running.values());
      this._running.clear();
      this._unsent.clear();
    }
    for (const task of tasks) task._cancel("lost its connection to pincerd");
    for (const call of this._calls.values()) call.reject(new TaskCancelled("the connection to pincerd was lost"));
    this._calls.clear();
  }
}

/** Runs a worker until it is drained or stopped. The first SIGTERM/SIGINT
 * drains it (running tasks finish, then it resolves), a second stops it. */
export async function runWorker(handler, options = {}) {
  const worker = new Worker(handler, options);
  const onSignal = () => (worker._selfDraining ? worker.stop() : worker.drain());
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    await worker.run();
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
  return worker;
}
