#!/usr/bin/env python3
"""Example of subtasks: a `plan` worker splits a text into lines, contracts
each to a `leaf` worker as a child task, waits for them and returns their
outputs in order. The leaf upper-cases its line.

    python3 example_plan.py leaf &
    python3 example_plan.py plan &
    pincerctl submit --skill plan --payload '"a\\nb"' --wait     # -> ["A","B"]

Give the leaves workers of their own: a plan holds its slot while it waits
for its children (docs/protocol.md, "Subtasks").
"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pincer_worker import TaskError, run_worker  # noqa: E402


def plan(task):
    if not isinstance(task.payload, str):
        raise TaskError("payload must be a string", retryable=False)
    parts = task.payload.split("\n")
    children = [task.submit(part, skills=["leaf"]) for part in parts]
    outputs = []
    for n, child in enumerate(children, 1):
        end = task.wait(child)
        if end["state"] != "succeeded":
            raise TaskError("child %s ended %s: %s" % (child, end["state"], end["error"]))
        outputs.append(end["output"])
        task.progress({"done": n, "of": len(children)})
    return outputs


def leaf(task):
    task.progress("upper-casing")
    return str(task.payload).upper()


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ("plan", "leaf"):
        sys.exit("usage: example_plan.py plan|leaf")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(plan if role == "plan" else leaf, skills=[role],
               capacity=int(os.environ.get("CAPACITY", "1")),
               name=os.environ.get("WORKER_NAME", role + "-py"))
