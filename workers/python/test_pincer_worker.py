"""Tests for pincer_worker.py against an in-process fake daemon.

    python3 -m unittest discover -s workers/python

The real daemon is exercised by tests/integration/python_worker_test.cc.
"""
import json
import os
import queue
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pincer_worker  # noqa: E402
from pincer_worker import RequestError, TaskCancelled, TaskError, Worker  # noqa: E402


class FakeDaemon:
    """Accepts worker connections on a loopback port and speaks lines."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.addr = "127.0.0.1:%d" % self.listener.getsockname()[1]

    def accept(self, heartbeat_ms=100, acks=True, **welcome):
        """The next connection, its hello read and welcomed; with acks=False
        the daemon never answers a heartbeat (a frozen one)."""
        self.listener.settimeout(5)
        sock, _ = self.listener.accept()
        peer = Peer(sock, acks)
        hello = peer.recv()
        peer.send(dict({"type": "welcome", "id": "w1", "heartbeat_ms": heartbeat_ms}, **welcome))
        return peer, hello

    def close(self):
        self.listener.close()


class Peer:
    """One worker connection. A thread reads its lines and answers each
    heartbeat with heartbeat_ack (as pincerd does when the hello asks),
    unless acks is False."""

    def __init__(self, sock, acks=True):
        self.sock = sock
        self.acks = acks
        self.lines = queue.Queue()  # the worker's lines; None once it closed
        self.write_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    msg = json.loads(line)
                    if msg.get("type") == "heartbeat" and self.acks:
                        self.send({"type": "heartbeat_ack"})  # before the test sees it
                    self.lines.put(msg)
        except OSError:
            pass
        self.lines.put(None)

    def send(self, msg):
        with self.write_lock:
            self.sock.sendall((msg if isinstance(msg, str) else json.dumps(msg)).encode() + b"\n")

    def recv(self, timeout=5, heartbeats=False):
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.lines.get(timeout=max(0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError("no message from the worker") from None
            if msg is None:
                self.lines.put(None)  # and for every later recv
                raise EOFError("worker closed the connection")
            if heartbeats or msg.get("type") != "heartbeat":
                return msg

    def wait_closed(self, timeout=10):
        """Reads the worker's lines until it closes the connection; returns them."""
        deadline = time.monotonic() + timeout
        lines = []
        try:
            while True:
                lines.append(self.recv(deadline - time.monotonic(), heartbeats=True))
        except EOFError:
            return lines

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # ends the reader thread
        except OSError:
            pass
        self.sock.close()


GATE = threading.Event()  # "gate" tasks run until it opens (or they are cancelled)
GATE_ENTERED = threading.Event()


def handler(task):
    p = task.payload
    if p == "gate":
        GATE_ENTERED.set()
        while not GATE.wait(0.01):
            if task.cancelled.is_set():
                return "dropped"
        return "opened"
    if p == "boom":
        raise RuntimeError("boom")
    if p == "permanent":
        raise TaskError("bad payload", retryable=False)
    if p == "unserializable":
        return object()
    if p == "progress":
        task.progress({"step": 1})
        return "done"
    if p == "usage":
        task.report_usage(input=100, output=20, cost=0.5, model="m1")
        task.report_usage(input=1, output=2, total=5)
        return "counted"
    if p == "usage-then-fail":
        task.report_usage(input=7, output=3)
        raise RuntimeError("503")
    if p == "bad-usage":
        task.report_usage(input=-1)
        return "unreachable"
    if p == "wait-cancel":
        task.cancelled.wait(5)
        return "too late"
    if p == "plan":
        child = task.submit("part", skills=["leaf"], priority=2)
        seen = []
        end = task.wait(child, on_progress=seen.append)
        both = task.submit_and_wait("part 2", skills=["leaf"])
        return [child, end["output"], seen, both["output"]]
    if p == "plan-refused":
        try:
            task.submit("x", parent="t0")
        except RequestError as e:
            return e.code
    if p == "plan-cancelled":
        try:
            task.wait("t5")
        except TaskCancelled:
            return "woke"
    if p == "plan-timeout":
        try:
            task.wait("t5", timeout=0.05)
        except TimeoutError:
            return task.wait("t5")["state"]
    if isinstance(p, str) and p.startswith("nest:"):
        out = []
        for _ in range(int(p[5:]) - 1):
            out = [out]
        return out
    if isinstance(p, str) and p.startswith("sleep:"):
        time.sleep(float(p[6:]))
        return p
    return p


class WorkerTest(unittest.TestCase):
    def setUp(self):
        self.daemon = FakeDaemon()
        self.worker = Worker(handler, skills=["echo"], capacity=2, name="py-test",
                             addr=self.daemon.addr, token="tok", labels={"k": "v"})
        self.thread = threading.Thread(target=self.worker.run, daemon=True)
        self.thread.start()
        self.peer, self.hello = self.daemon.accept()

    def tearDown(self):
        self.worker.stop()
        self.thread.join(5)
        self.peer.close()
        self.daemon.close()

    def task(self, tid, payload):
        self.peer.send({"type": "task", "id": tid, "skills": ["echo"], "payload": payload,
                        "attempt": 1, "session": None, "deadline_ms": None})

    def test_hello(self):
        self.assertEqual(self.hello, {"type": "hello", "role": "worker", "proto": 1,
                                      "token": "tok", "name": "py-test", "skills": ["echo"],
                                      "capacity": 2, "labels": {"k": "v"},
                                      "confirms_stop": True, "heartbeat_ack": True,
                                      "tasks": []})

    def test_heartbeats(self):
        beat = self.peer.recv(heartbeats=True)
        self.assertEqual(beat["type"], "heartbeat")
        self.assertIsInstance(beat["load"], dict)
        self.assertEqual(self.peer.recv(heartbeats=True)["type"], "heartbeat")

    def test_success(self):
        self.task("t1", {"a": [1, 2]})
        self.assertEqual(self.peer.recv(),
                         {"type": "result", "id": "t1", "attempt": 1, "ok": True,
                          "output": {"a": [1, 2]}})

    def test_exception_is_retryable(self):
        self.task("t1", "boom")
        self.assertEqual(self.peer.recv(), {"type": "result", "id": "t1", "attempt": 1, "ok": False,
                                            "error": "RuntimeError: boom", "retryable": True})

    def test_task_error_not_retryable(self):
        self.task("t1", "permanent")
        self.assertEqual(self.peer.recv(), {"type": "result", "id": "t1", "attempt": 1, "ok": False,
                                            "error": "bad payload", "retryable": False})

    def test_usage_goes_with_the_result(self):
        self.task("t1", "usage")
        self.assertEqual(self.peer.recv(), {
            "type": "result", "id": "t1", "attempt": 1, "ok": True, "output": "counted",
            "usage": {"input": 101, "output": 22, "total": 125, "cost": 0.5, "model": "m1"}})
        self.task("t2", "usage-then-fail")
        r = self.peer.recv()
        self.assertFalse(r["ok"])
        self.assertEqual(r["usage"], {"input": 7, "output": 3, "total": 10})
        self.task("t3", "bad-usage")
        r = self.peer.recv()
        self.assertFalse(r["ok"])
        self.assertIn("non-negative", r["error"])
        self.assertNotIn("usage", r)

    def test_unserializable_output(self):
        self.task("t1", "unserializable")
        r = self.peer.recv()
        self.assertFalse(r["ok"])
        self.assertFalse(r["retryable"])

    def test_progress_then_result(self):
        self.task("t1", "progress")
        self.assertEqual(self.peer.recv(),
                         {"type": "progress", "id": "t1", "attempt": 1, "data": {"step": 1}})
        self.assertEqual(self.peer.recv()["output"], "done")

    def test_cancel_sets_event_and_sends_stopped_not_a_result(self):
        self.task("t1", "wait-cancel")
        time.sleep(0.1)
        self.peer.send({"type": "cancel", "id": "t1", "attempt": 1, "reason": "timed_out"})
        self.assertEqual(self.peer.recv(), {"type": "stopped", "id": "t1", "attempt": 1})
        self.task("t2", "after")
        self.assertEqual(self.peer.recv()["id"], "t2")
        with self.assertRaises(TimeoutError):
            self.peer.recv(timeout=0.5)

    def test_a_cancelled_handler_keeps_its_slot_until_it_returns(self):
        self.task("a", "sleep:0.5")
        self.task("b", "sleep:0.5")
        time.sleep(0.1)
        self.peer.send({"type": "cancel", "id": "a", "attempt": 1, "reason": "cancelled"})
        self.task("c", "x")
        self.assertEqual(self.peer.recv()["error"], "worker is at capacity (2)")
        got = [self.peer.recv(), self.peer.recv()]
        self.assertIn({"type": "stopped", "id": "a", "attempt": 1}, got)
        self.assertIn("b", [m["id"] for m in got if m["type"] == "result"])

    def test_cancel_of_a_task_not_running_is_stopped_at_once(self):
        self.peer.send({"type": "cancel", "id": "t9", "attempt": 3, "reason": "timed_out"})
        self.assertEqual(self.peer.recv(), {"type": "stopped", "id": "t9", "attempt": 3})

    def test_over_capacity_is_handed_back(self):
        self.task("a", "sleep:0.3")
        self.task("b", "sleep:0.3")
        self.task("c", "x")
        first = self.peer.recv()
        self.assertEqual(first, {"type": "result", "id": "c", "ok": False,
                                 "error": "worker is at capacity (2)", "retryable": True})
        self.assertEqual({self.peer.recv()["id"], self.peer.recv()["id"]}, {"a", "b"})

    def test_a_handler_submits_and_waits_for_children(self):
        self.task("t1", "plan")
        submit = self.peer.recv()
        req = submit.pop("req")
        self.assertEqual(submit, {"type": "submit", "skills": ["leaf"], "payload": "part",
                                  "parent": "t1", "priority": 2})
        # The daemon's own lines interleave with answers: still served.
        self.task("t9", "between")
        self.assertEqual(self.peer.recv()["output"], "between")
        self.peer.send({"type": "ok", "req": req, "id": "t2", "existing": False})
        wait = self.peer.recv()
        self.assertEqual((wait["type"], wait["id"]), ("wait", "t2"))
        self.assertNotEqual(wait["req"], req)
        self.peer.send({"type": "progress", "req": wait["req"], "id": "t2", "attempt": 1,
                        "data": {"step": 1}})
        self.peer.send({"type": "end", "req": wait["req"], "id": "t2", "state": "succeeded",
                        "output": "PART", "error": None, "attempts": 1})
        both = self.peer.recv()
        self.assertEqual((both["type"], both["wait"], both["parent"]), ("submit", True, "t1"))
        self.peer.send({"type": "ok", "req": both["req"], "id": "t3", "existing": False})
        self.peer.send({"type": "end", "req": both["req"], "id": "t3", "state": "succeeded",
                        "output": "PART 2", "error": None, "attempts": 1})
        self.assertEqual(self.peer.recv(), {"type": "result", "id": "t1", "attempt": 1, "ok": True,
                                            "output": ["t2", "PART", [{"step": 1}], "PART 2"]})

    def test_a_refused_request_raises_request_error(self):
        self.task("t1", "plan-refused")
        submit = self.peer.recv()
        self.assertEqual(submit["parent"], "t0")
        self.peer.send({"type": "error", "req": submit["req"], "code": "unknown_task",
                        "message": "no task t0 runs on this worker"})
        self.assertEqual(self.peer.recv()["output"], "unknown_task")

    def test_a_cancel_wakes_a_pending_wait(self):
        self.task("t1", "plan-cancelled")
        self.assertEqual(self.peer.recv()["type"], "wait")
        self.peer.send({"type": "cancel", "id": "t1", "attempt": 1, "reason": "cancelled"})
        # The handler returned: its slot is free, and no result goes out.
        self.assertEqual(self.peer.recv(), {"type": "stopped", "id": "t1", "attempt": 1})

    def test_a_wait_that_timed_out_goes_on(self):
        self.task("t1", "plan-timeout")
        wait = self.peer.recv()
        time.sleep(0.2)  # past the handler's 50 ms timeout: it waits again
        self.peer.send({"type": "end", "req": wait["req"], "id": "t5", "state": "failed",
                        "output": None, "error": "x", "attempts": 1})
        # One wait request only (a second would be already_waiting).
        self.assertEqual(self.peer.recv()["output"], "failed")

    def test_bad_lines_are_ignored(self):
        self.peer.send("not json")
        self.peer.send({"type": "surprise"})
        self.peer.send({"type": "error", "code": "unknown_task", "message": "no task t0"})
        self.task("t1", "still here")
        self.assertEqual(self.peer.recv()["output"], "still here")

    def test_deep_lines_are_bad_lines(self):
        # Past what Python's json reads (RecursionError): skipped like any
        # bad line, and the worker serves on.
        deep = 100000
        self.peer.send('{"type":"task","id":"t0","payload":' + "[" * deep + "]" * deep + "}")
        self.peer.send("[" * deep)
        self.task("t1", "still here")
        self.assertEqual(self.peer.recv()["output"], "still here")

    def test_output_too_deep_fails_the_task(self):
        # No max_json_depth in the welcome: the default 64, so an output may
        # nest 63 levels (the result object is level 1).
        self.task("t1", "nest:63")
        r = self.peer.recv()
        self.assertTrue(r["ok"])
        self.task("t2", "nest:64")
        r = self.peer.recv()
        self.assertEqual((r["id"], r["ok"], r["retryable"]), ("t2", False, False))
        self.assertIn("output too deep", r["error"])
        self.assertIn("64", r["error"])
        # Past Python's own recursion limit too.
        self.task("t3", "nest:100000")
        r = self.peer.recv()
        self.assertEqual((r["id"], r["ok"], r["retryable"]), ("t3", False, False))

    def test_drain_finishes_then_returns(self):
        self.task("t1", "sleep:0.2")
        self.peer.send({"type": "drain"})
        self.task("t2", "late")
        self.assertEqual(self.peer.recv()["error"], "worker is draining")
        self.assertEqual(self.peer.recv()["id"], "t1")
        with self.assertRaises(EOFError):
            self.peer.recv(timeout=3)
        self.thread.join(3)
        self.assertFalse(self.thread.is_alive())

    def test_reconnects_keeping_its_task_and_lists_it_in_the_hello(self):
        GATE.clear()
        GATE_ENTERED.clear()
        self.task("t1", "gate")
        self.assertTrue(GATE_ENTERED.wait(5))
        self.peer.close()
        self.peer, hello = self.daemon.accept()
        self.assertEqual(hello["tasks"], [{"id": "t1", "attempt": 1}])
        GATE.set()  # pincerd adopted it: its result comes on the new connection
        result = self.peer.recv()
        self.assertEqual((result["id"], result["attempt"], result["output"]), ("t1", 1, "opened"))
        self.task("t2", "again")
        self.assertEqual(self.peer.recv()["output"], "again")

    def test_a_result_sent_to_a_daemon_gone_silent_goes_again(self):
        self.peer.close()
        # A daemon that welcomes, reads the result, then answers nothing.
        self.peer, hello = self.daemon.accept(acks=False)
        self.assertTrue(hello["heartbeat_ack"])
        self.task("t1", "done")
        sent = self.peer.recv()
        self.assertEqual((sent["id"], sent["output"]), ("t1", "done"))
        self.peer.wait_closed()  # the worker leaves it
        self.peer, hello = self.daemon.accept()
        self.assertEqual(hello["tasks"], [{"id": "t1", "attempt": 1}])
        self.assertEqual(self.peer.recv(), sent)
        # Stored there after all: not adopted, so the kept result is dropped.
        self.peer.send({"type": "cancel", "id": "t1", "attempt": 1, "reason": "not_adopted"})
        self.assertEqual(self.peer.recv(), {"type": "stopped", "id": "t1", "attempt": 1})

    def test_a_result_acked_an_interval_later_is_not_listed_again(self):
        self.task("t1", "done")
        wire = []
        while len([m for m in wire if m["type"] == "heartbeat"]) < 3:
            msg = self.peer.recv(heartbeats=True)
            if msg["type"] == "result" or wire:
                wire.append(msg)
        # Heartbeats go an interval apart, so the third one after the result
        # went a whole interval after it, and its ack confirms the result.
        # The worker reads lines in order: the answer to this cancel comes
        # once it has read that ack.
        self.peer.send({"type": "cancel", "id": "t9", "attempt": 1, "reason": "cancelled"})
        self.assertEqual(self.peer.recv(), {"type": "stopped", "id": "t9", "attempt": 1})
        self.peer.close()
        self.peer, hello = self.daemon.accept()
        self.assertEqual(hello["tasks"], [])
        self.peer.send({"type": "cancel", "id": "t8", "attempt": 1, "reason": "cancelled"})
        self.assertEqual(self.peer.recv(), {"type": "stopped", "id": "t8", "attempt": 1})

    def test_a_task_not_adopted_is_dropped(self):
        GATE.clear()
        GATE_ENTERED.clear()
        self.task("t1", "gate")
        self.assertTrue(GATE_ENTERED.wait(5))
        self.peer.close()
        self.peer, hello = self.daemon.accept()
        self.assertEqual(hello["tasks"], [{"id": "t1", "attempt": 1}])
        self.peer.send({"type": "cancel", "id": "t1", "attempt": 1, "reason": "not_adopted"})
        self.assertEqual(self.peer.recv(), {"type": "stopped", "id": "t1", "attempt": 1})


class DaemonDepthTest(unittest.TestCase):
    def test_welcome_sets_the_output_depth(self):
        daemon = FakeDaemon()
        worker = Worker(handler, skills=["echo"], addr=daemon.addr)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        peer, _ = daemon.accept(max_json_depth=8)
        try:
            peer.send({"type": "task", "id": "t1", "payload": "nest:7"})
            self.assertTrue(peer.recv()["ok"])
            peer.send({"type": "task", "id": "t2", "payload": "nest:8"})
            r = peer.recv()
            self.assertFalse(r["ok"])
            self.assertIn("limits.max_json_depth = 8", r["error"])
        finally:
            worker.stop()
            thread.join(5)
            peer.close()
            daemon.close()


class AddressListTest(unittest.TestCase):
    """addr="A,B": each in turn; a standby's not_leader names the leader."""

    def run_worker(self, addr):
        worker = Worker(handler, skills=["echo"], addr=addr)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 5)
        self.addCleanup(worker.stop)
        return worker

    def test_a_refused_address_is_passed_over(self):
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))  # bound, never listening: refused
        self.addCleanup(dead.close)
        daemon = FakeDaemon()
        self.addCleanup(daemon.close)
        self.run_worker("127.0.0.1:%d, %s" % (dead.getsockname()[1], daemon.addr))
        peer, hello = daemon.accept()
        self.addCleanup(peer.close)
        self.assertEqual(hello["type"], "hello")
        peer.send({"type": "task", "id": "t1", "payload": "served"})
        self.assertEqual(peer.recv()["output"], "served")

    def test_a_standby_sends_the_worker_to_the_leader_it_names(self):
        standby = FakeDaemon()
        leader = FakeDaemon()
        self.addCleanup(standby.close)
        self.addCleanup(leader.close)
        # The leader is not in the list: only the standby's answer names it.
        self.run_worker(standby.addr)
        standby.listener.settimeout(5)
        sock, _ = standby.listener.accept()
        refused = Peer(sock)
        self.assertEqual(refused.recv()["type"], "hello")
        refused.send({"type": "error", "code": "not_leader", "message": "a standby",
                      "leader": leader.addr})
        refused.close()
        peer, hello = leader.accept()
        self.addCleanup(peer.close)
        self.assertEqual(hello["type"], "hello")
        peer.send({"type": "task", "id": "t1", "payload": "led"})
        self.assertEqual(peer.recv()["output"], "led")

    def test_a_silent_daemon_is_left_for_the_next_address(self):
        frozen = FakeDaemon()
        other = FakeDaemon()
        self.addCleanup(frozen.close)
        self.addCleanup(other.close)
        self.run_worker("%s,%s" % (frozen.addr, other.addr))
        # Welcomes, then never answers a heartbeat (SIGSTOP, a paused VM):
        # its socket stays open, and the worker leaves it all the same.
        silent, hello = frozen.accept(heartbeat_ms=100, acks=False)
        self.addCleanup(silent.close)
        self.assertTrue(hello["heartbeat_ack"])
        silent.wait_closed()
        peer, hello = other.accept()
        self.addCleanup(peer.close)
        self.assertTrue(hello["heartbeat_ack"])
        peer.send({"type": "task", "id": "t1", "payload": "served"})
        self.assertEqual(peer.recv()["output"], "served")

    def test_an_empty_element_is_refused(self):
        for addr in ("a:1,", ",a:1", "a:1,,b:2"):
            with self.assertRaises(ValueError):
                Worker(handler, addr=addr)


class EnvTest(unittest.TestCase):
    def test_defaults_come_from_env(self):
        old = dict(os.environ)
        try:
            os.environ.update({"PINCER_ADDR": "unix:/tmp/x.sock", "PINCER_TOKEN": "t",
                               "PINCER_SPAWN_ID": "s7"})
            w = Worker(handler)
            self.assertEqual((w.addr, w.token, w.spawn_id), ("unix:/tmp/x.sock", "t", "s7"))
            self.assertEqual(Worker(handler, addr="h:1", token="").token, "")
        finally:
            os.environ.clear()
            os.environ.update(old)

    def test_default_address(self):
        old = os.environ.pop("PINCER_ADDR", None)
        try:
            self.assertEqual(Worker(handler).addr, pincer_worker.DEFAULT_ADDR)
        finally:
            if old is not None:
                os.environ["PINCER_ADDR"] = old


class TlsSettingsTest(unittest.TestCase):
    """TLS end to end runs against a real pincerd in tests/integration/tls_test.cc."""

    def setUp(self):
        self.old = dict(os.environ)
        for name in ("PINCER_TLS_CA", "PINCER_TLS_CERT", "PINCER_TLS_KEY"):
            os.environ.pop(name, None)

    def tearDown(self):
        os.environ.clear()
        os.environ.update(self.old)

    def test_plain_without_a_ca(self):
        self.assertIsNone(Worker(handler).tls)

    def test_cert_without_ca_is_refused(self):
        with self.assertRaises(ValueError):
            Worker(handler, tls_cert="c.pem", tls_key="k.pem")

    def test_missing_ca_file_fails_at_once(self):
        with self.assertRaises(OSError):
            Worker(handler, tls_ca="/nonexistent/ca.pem")
        os.environ["PINCER_TLS_CA"] = "/nonexistent/ca.pem"
        with self.assertRaises(OSError):
            Worker(handler)


if __name__ == "__main__":
    unittest.main()
