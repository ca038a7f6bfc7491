#!/usr/bin/env node
// Example pincer workers in Node: `upper` upper-cases its payload, and
// `plan` splits a text into lines, contracts each to an `upper` worker as a
// child task, waits for them and returns their outputs in order.
//
//   node example.js upper &
//   node example.js plan &
//   pincerctl submit --skill plan --payload '"a\nb"' --wait     # -> ["A","B"]
//
// PINCER_ADDR, PINCER_TOKEN, PINCER_TLS_CA, CAPACITY and WORKER_NAME are
// honoured. Give `upper` workers of their own: a plan holds its slot while
// it waits for its children.
import { runWorker, TaskError } from "./pincer-worker.js";

async function upper(task) {
  task.progress("upper-casing");
  if (typeof task.payload !== "string") {
    // The same payload would fail again: no point in retrying.
    throw new TaskError("payload must be a string", { retryable: false });
  }
  return task.payload.toUpperCase();
}

async function plan(task) {
  if (typeof task.payload !== "string") throw new TaskError("payload must be a string", { retryable: false });
  const parts = task.payload.split("\n");
  const children = [];
  for (const part of parts) children.push(await task.submit(part, { skills: ["upper"] }));
  const outputs = [];
  for (const child of children) {
    const end = await task.wait(child);
    if (end.state !== "succeeded") throw new TaskError(`child ${child} ended ${end.state}: ${end.error}`);
    outputs.push(end.output);
    task.progress({ done: outputs.length, of: children.length });
  }
  return outputs;
}

const role = process.argv[2];
const handlers = { upper, plan };
if (!handlers[role]) {
  console.error("usage: node example.js upper|plan");
  process.exit(2);
}
await runWorker(handlers[role], {
  skills: [role],
  capacity: Number(process.env.CAPACITY ?? 1),
  name: process.env.WORKER_NAME ?? `${role}-node`,
});
