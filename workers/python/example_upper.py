#!/usr/bin/env python3
"""Example pincer worker with the skill "upper": returns the payload upper-cased.

    PINCER_ADDR=127.0.0.1:7878 python3 example_upper.py
    pincerctl submit --skill upper --payload '"hello"' --wait     # -> HELLO
"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pincer_worker import TaskError, run_worker  # noqa: E402


def upper(task):
    if isinstance(task.payload, str):
        return task.payload.upper()
    if isinstance(task.payload, dict) and isinstance(task.payload.get("text"), str):
        return {**task.payload, "text": task.payload["text"].upper()}
    # The same payload would fail again: no point in retrying.
    raise TaskError("payload must be a string or {\"text\": string}", retryable=False)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(upper, skills=["upper"], capacity=int(os.environ.get("CAPACITY", "1")),
               name=os.environ.get("WORKER_NAME", "upper-py"))
