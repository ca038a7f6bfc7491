#!/usr/bin/env python3
"""Example pincer worker with the skill "upper": returns the payload upper-cased.

    PINCER_ADDR=127.0.0.1:7878 python3 example_upper.py
    pincerctl submit --skill upper --payload '"hello"' --wait     # -> HELLO

Over TLS: python3 example_upper.py --addr pincer.example:7878 --tls-ca ca.pem
"""
import argparse
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
    parser = argparse.ArgumentParser(description="pincer worker for the skill 'upper'")
    parser.add_argument("--addr", help="HOST:PORT or unix:PATH (env PINCER_ADDR)")
    parser.add_argument("--tls-ca", help="speak TLS; trust the CAs in this PEM file (env PINCER_TLS_CA)")
    parser.add_argument("--tls-cert", help="client certificate, PEM (env PINCER_TLS_CERT)")
    parser.add_argument("--tls-key", help="its private key, PEM (env PINCER_TLS_KEY)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(upper, skills=["upper"], capacity=int(os.environ.get("CAPACITY", "1")),
                   name=os.environ.get("WORKER_NAME", "upper-py"), addr=args.addr,
                   tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)
    except (OSError, ValueError) as e:  # an unreadable or unusable TLS file
        sys.exit("example_upper.py: %s" % e)
