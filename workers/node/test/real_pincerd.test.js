// example.js against a real pincerd: a `plan` worker contracts children to
// `upper` workers through pincerd, and a first SIGTERM drains a worker.
// Needs PINCER_BUILD_DIR (the directory with pincerd); ctest sets it.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const example = path.join(here, "..", "example.js");
const buildDir = process.env.PINCER_BUILD_DIR;

/** A client connection that sends requests and collects lines by req. */
class Client {
  static async connect(addr) {
    const c = new Client();
    const colon = addr.lastIndexOf(":");
    c.sock = net.connect({ host: addr.slice(0, colon), port: Number(addr.slice(colon + 1)) });
    c.sock.setEncoding("utf8");
    let buf = "";
    c.sock.on("data", (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        c._line(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
      }
    });
    const welcome = new Promise((resolve) => (c.onWelcome = resolve));
    c.sock.write(JSON.stringify({ type: "hello", role: "client", proto: 1 }) + "\n");
    assert.equal((await welcome).type, "welcome");
    return c;
  }

  constructor() {
    this.req = 0;
    this.pending = new Map();
  }

  _line(msg) {
    if (this.onWelcome) {
      const w = this.onWelcome;
      this.onWelcome = null;
      w(msg);
      return;
    }
    this.pending.get(msg.req)?.(msg);
  }

  /** Sends `msg`; resolves to the lines with its req up to the one `last` accepts. */
  ask(msg, last = (m) => m.type !== "progress") {
    const req = ++this.req;
    const lines = [];
    return new Promise((resolve) => {
      this.pending.set(req, (m) => {
        lines.push(m);
        if (last(m)) {
          this.pending.delete(req);
          resolve(lines);
        }
      });
      this.sock.write(JSON.stringify({ ...msg, req }) + "\n");
    });
  }

  close() {
    this.sock.destroy();
  }
}

function startWorker(dir, role, addr, name = `${role}-node`) {
  const env = { ...process.env, PINCER_ADDR: addr, WORKER_NAME: name };
  delete env.PINCER_TOKEN;
  delete env.PINCER_SPAWN_ID;
  const err = fs.openSync(path.join(dir, `${name}.err`), "w");
  const child = spawn(process.execPath, [example, role], { env, stdio: ["ignore", "ignore", err] });
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return child;
}

describe("example.js against a real pincerd", { skip: buildDir ? false : "PINCER_BUILD_DIR is not set" }, () => {
  let dir, pincerd, addr, client;
  const workers = [];

  // Starts pincerd on `listen`; resolves to the address it listens on.
  async function startPincerd(listen) {
    fs.writeFileSync(path.join(dir, "pincer.yaml"), `listen: "${listen}"\ndata_dir: "${dir}/data"\n`);
    const addrFile = path.join(dir, "addr");
    fs.rmSync(addrFile, { force: true });
    const err = fs.openSync(path.join(dir, "pincerd.err"), "a");
    pincerd = spawn(path.join(buildDir, "pincerd"), ["--config", path.join(dir, "pincer.yaml"), "--address-file", addrFile], {
      stdio: ["ignore", "ignore", err],
    });
    const exited = new Promise((resolve) => pincerd.on("exit", resolve));
    // pincerd writes the address file once it listens.
    const written = new Promise((resolve) => {
      const check = () => {
        const text = fs.existsSync(addrFile) ? fs.readFileSync(addrFile, "utf8") : "";
        if (/:\d+\n?$/.test(text)) {
          watcher.close();
          resolve(text.trim());
        }
      };
      const watcher = fs.watch(dir, check);
      check();
    });
    return Promise.race([written, exited.then((code) => {
      throw new Error(`pincerd exited (${code}): ${fs.readFileSync(path.join(dir, "pincerd.err"), "utf8")}`);
    })]);
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pincer-node-"));
    addr = await startPincerd("127.0.0.1:0");
    client = await Client.connect(addr);
  });

  after(async () => {
    client?.close();
    for (const w of workers) w.kill("SIGKILL");
    pincerd?.kill("SIGTERM");
    if (pincerd) await new Promise((resolve) => (pincerd.exitCode !== null ? resolve() : pincerd.on("exit", resolve)));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("a plan worker submits 4 children to upper workers and succeeds with their outputs", async () => {
    workers.push(startWorker(dir, "upper", addr), startWorker(dir, "plan", addr));
    const lines = await client.ask({ type: "submit", skills: ["plan"], payload: "a\nb\nc\nd", wait: true }, (m) => m.type === "end" || m.type === "error");
    const end = lines.at(-1);
    assert.equal(end.type, "end", JSON.stringify(lines));
    assert.equal(end.state, "succeeded", JSON.stringify(end));
    assert.deepEqual(end.output, ["A", "B", "C", "D"]);
    // The plan's progress came live, before the end.
    assert.ok(lines.some((m) => m.type === "progress" && m.data.of === 4), JSON.stringify(lines));

    const [status] = await client.ask({ type: "status", id: end.id });
    assert.equal(status.task.children.length, 4, JSON.stringify(status));
    for (const id of status.task.children) {
      const [child] = await client.ask({ type: "status", id });
      assert.equal(child.task.parent, end.id);
      assert.equal(child.task.state, "succeeded");
    }
  });

  test("a cancelled parent takes its children with it, and its worker serves on", async () => {
    const script = path.join(dir, "fanout.mjs");
    fs.writeFileSync(script, `
import { runWorker } from ${JSON.stringify(path.join(here, "..", "pincer-worker.js"))};
const role = process.argv[2];
await runWorker(async (task) => {
  if (role === "hang") return await new Promise((resolve) => task.signal.addEventListener("abort", resolve));
  if (task.payload === "quick") return "quick";
  const children = [];
  for (let i = 0; i < 3; i++) children.push(await task.submit(i, { skills: ["hang"] }));
  for (const child of children) await task.wait(child);
  return "unreachable";
}, { skills: [role], capacity: role === "hang" ? 3 : 1, name: role + "-node" });
`);
    for (const role of ["hang", "fanout"]) {
      const env = { ...process.env, PINCER_ADDR: addr };
      delete env.PINCER_TOKEN;
      const err = fs.openSync(path.join(dir, `${role}.err`), "w");
      workers.push(spawn(process.execPath, [script, role], { env, stdio: ["ignore", "ignore", err] }));
    }
    const [ok] = await client.ask({ type: "submit", skills: ["fanout"], payload: "go" });
    const parent = ok.id;
    // Until its 3 children run (each look an awaited answer).
    let children;
    for (;;) {
      const [st] = await client.ask({ type: "status", id: parent });
      children = st.task.children;
      if (children.length === 3) {
        const states = await Promise.all(children.map((id) => client.ask({ type: "status", id })));
        if (states.every(([c]) => c.task.state === "running")) break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const [cancelled] = await client.ask({ type: "cancel", id: parent });
    assert.equal(cancelled.type, "ok", JSON.stringify(cancelled));
    for (const id of children) {
      const lines = await client.ask({ type: "wait", id });
      assert.equal(lines.at(-1).state, "cancelled", JSON.stringify(lines));
    }
    // The fanout worker has one slot: it serves again once the cancelled
    // handler returned and its `stopped` went out.
    const lines = await client.ask({ type: "submit", skills: ["fanout"], payload: "quick", wait: true }, (m) => m.type === "end" || m.type === "error");
    assert.equal(lines.at(-1).output, "quick", JSON.stringify(lines));
  });

  test("a worker reconnects after pincerd is killed and comes back", async () => {
    // upper-node from the first test is connected: kill -9 the daemon under it.
    client.close();
    const gone = new Promise((resolve) => pincerd.on("exit", resolve));
    pincerd.kill("SIGKILL");
    await gone;
    assert.equal(await startPincerd(addr), addr);
    client = await Client.connect(addr);
    const lines = await client.ask({ type: "submit", skills: ["upper"], payload: "again", wait: true }, (m) => m.type === "end" || m.type === "error");
    assert.equal(lines.at(-1).output, "AGAIN", JSON.stringify(lines));
  });

  test("a first SIGTERM drains the worker: it exits 0", async () => {
    const w = startWorker(dir, "upper", addr, "drain-node");
    // Until pincerd lists it (each look is an answer awaited, not a sleep).
    for (;;) {
      const [ok] = await client.ask({ type: "workers" });
      if (ok.workers.some((x) => x.name === "drain-node")) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    w.kill("SIGTERM");
    assert.deepEqual(await w.exited, { code: 0, signal: null });
  });
});
