#!/usr/bin/env python3
"""Stand-in agents for the three patterns in docs/patterns.md.

Each role is a pincer worker built on workers/python/pincer_worker.py. They
do small, deterministic work in place of a model call, so the examples run
anywhere; swap a role for a real agent (docs/openclaw.md) and the configs
stay the same.

    agents.py summarize   first sentence of a text            (dispatcher)
    agents.py translate   a toy word-for-word translation     (dispatcher)
    agents.py classify    names the skills a skill-less task needs: the
                          dispatcher's triage rule routes by its answer
    agents.py research    notes on a topic, after a pause     (work queue)
    agents.py plan        splits a goal into sections, contracts each to a
                          `write` agent as a subtask, joins them (swarm)
    agents.py write       writes one section                  (swarm)

pincerd starts them as pools (PINCER_ADDR, PINCER_POOL and PINCER_REPLICA
come from it); by hand: `PINCER_ADDR=127.0.0.1:7878 agents.py summarize`.
"""
import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# The Python worker library: in a source tree, or on PYTHONPATH.
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "workers", "python"))
from pincer_worker import TaskError, run_worker  # noqa: E402

WHO = "%s-%s" % (os.environ.get("PINCER_POOL", "agent"), os.environ.get("PINCER_REPLICA", "0"))


def text_of(task):
    if isinstance(task.payload, str):
        return task.payload
    if isinstance(task.payload, dict) and isinstance(task.payload.get("text"), str):
        return task.payload["text"]
    raise TaskError("payload must be a string or {\"text\": ...}", retryable=False)


def summarize(task):
    text = text_of(task).strip()
    return {"summary": text.split(". ")[0].rstrip(".") + ".", "by": WHO}


WORDS = {"the": "le", "cat": "chat", "dog": "chien", "eats": "mange", "sleeps": "dort"}


def translate(task):
    words = text_of(task).lower().split()
    return {"fr": " ".join(WORDS.get(w, w) for w in words), "by": WHO}


def classify(task):
    # An LLM would read the task here; this one looks at the words.
    words = text_of(task).lower().split()
    if words and all(w in WORDS for w in words):
        return {"skills": ["translate"]}
    if "count" in words or "how many" in " ".join(words):
        return {"skills": ["count"]}
    return {"skills": ["summarize"]}


def research(task):
    topic = text_of(task)
    pause = task.payload.get("seconds", 0.2) if isinstance(task.payload, dict) else 0.2
    task.progress({"step": "reading about " + topic})
    time.sleep(float(pause))  # stands for a model call
    return {"topic": topic, "notes": "three facts about " + topic, "by": WHO}


def plan(task):
    goal = text_of(task)
    sections = task.payload.get("sections") if isinstance(task.payload, dict) else None
    sections = sections or ["background", "method", "results"]
    # Contract every section first, then wait: the children run in parallel
    # on the `write` pool while this task keeps its own slot.
    children = [task.submit({"goal": goal, "section": s}, skills=["write"]) for s in sections]
    parts = []
    for n, child in enumerate(children, 1):
        end = task.wait(child)
        if end["state"] != "succeeded":
            raise TaskError("section %s ended %s: %s" % (child, end["state"], end["error"]))
        parts.append(end["output"])
        task.progress({"sections_done": n, "of": len(children)})
    return {"goal": goal, "report": parts, "children": children, "by": WHO}


def write(task):
    p = task.payload if isinstance(task.payload, dict) else {}
    return "%s of %s (by %s)" % (p.get("section", "a section"), p.get("goal", "?"), WHO)


ROLES = {"summarize": summarize, "translate": translate, "classify": classify,
         "research": research,
         "plan": plan, "write": write}

if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    if role not in ROLES:
        sys.exit("usage: agents.py " + "|".join(ROLES))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s " + WHO + ": %(message)s")
    run_worker(ROLES[role], skills=[role], name=WHO,
               capacity=int(os.environ.get("CAPACITY", "1")))
