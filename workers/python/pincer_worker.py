"""A pincer worker in standard-library Python, written from docs/protocol.md.

    from pincer_worker import run_worker

    def handle(task):
        task.progress("halfway")      # optional
        return task.payload.upper()   # becomes the result's output

    run_worker(handle, skills=["upper"])

A handler's return value (any JSON-serializable value) is the task's output.
Raising TaskError(msg, retryable=False) fails the task for good; any other
exception fails this attempt and lets pincerd retry it.

A handler may contract subtasks through pincerd on the worker's own
connection: task.submit(payload, skills=[...]) gives a child's id (its
parent is the running task), task.wait(child_id) its end, and
task.submit_and_wait(...) both at once (docs/protocol.md, "Subtasks").

A handler that calls a model can report what the attempt used with
task.report_usage(input=120, output=40, cost=0.002, model="m"): it goes in
the result's `usage` (ok or failed), which pincerd adds up per task.
"""

import collections
import json
import logging
import os
import queue
import random
import select
import signal
import socket
import ssl
import threading
import time

__all__ = ["run_worker", "Worker", "Task", "TaskError", "TaskCancelled", "RequestError"]

PROTO = 1
DEFAULT_ADDR = "127.0.0.1:7878"
MAX_LINE_BYTES = 17 << 20  # the daemon's default frame limit, plus a task's own fields
MAX_UNCONFIRMED = 4096  # results kept per connection until pincerd has surely stored them

log = logging.getLogger("pincer_worker")


class TaskError(Exception):
    """Raise from a handler to fail a task with a message of your choosing."""

    def __init__(self, message, retryable=True):
        super().__init__(message)
        self.retryable = retryable


class TaskCancelled(Exception):
    """Raised by a task's subtask calls (submit, wait, ...) when the task was
    cancelled, timed out or lost with the connection while they waited."""


class RequestError(Exception):
    """pincerd refused a request a handler sent (an `error` answer): `code`
    is its code (`unknown_task`, `not_found`, `invalid_request`, ...)."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class _Call:
    """A request a handler sent on the worker's connection: the reader puts
    its answers (ok, error, progress, end) in `lines`."""

    def __init__(self, req, task, waits_end):
        self.req = req
        self.task = task
        self.waits_end = waits_end  # wait, watch, submit with wait: true
        self.lines = queue.Queue()
        self.ok = None  # the `ok` of a submit with wait: true


class Task:
    """One task as the handler sees it. `cancelled` is set when pincerd
    cancels the task (or the worker stops or drains): Python cannot stop a
    thread, so long handlers should check it and return early."""

    def __init__(self, msg, worker, conn):
        self.id = msg["id"]
        self.payload = msg.get("payload")
        self.attempt = msg.get("attempt", 1)
        self.session = msg.get("session")
        self.skills = msg.get("skills", [])
        self.deadline_ms = msg.get("deadline_ms")
        self.cancelled = threading.Event()
        self.usage = None  # set by report_usage; sent with the result
        self._worker = worker
        self._conn = conn
        self._calls = set()  # pending _Calls, woken when the task is cancelled
        self._waits = {}  # child id -> the _Call of a wait that timed out here

    def _cancel(self):
        self.cancelled.set()
        with self._worker._lock:
            calls = list(self._calls)
        for call in calls:
            call.lines.put(None)

    def report_usage(self, input=0, output=0, total=None, cost=None, model=None):
        """Add tokens (and cost, model) this attempt used; sent with its
        result. Counts must be non-negative integers, cost a non-negative
        number: pincerd refuses a result with anything else."""
        for name, n in (("input", input), ("output", output), ("total", total)):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
                raise ValueError("usage %s must be a non-negative integer" % name)
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float))
                                 or not cost >= 0 or cost == float("inf")):
            raise ValueError("usage cost must be a non-negative number")
        if model is not None and not isinstance(model, str):
            raise ValueError("usage model must be a string")
        u = self.usage or {"input": 0, "output": 0, "total": 0}
        u["input"] += input
        u["output"] += output
        u["total"] += input + output if total is None else total
        if cost is not None:
            u["cost"] = u.get("cost", 0) + cost
        if model is not None:
            u["model"] = model
        self.usage = u

    def progress(self, data):
        """Report progress (any JSON value); shown by `pincerctl status`."""
        if not self.cancelled.is_set():
            self._conn.send({"type": "progress", "id": self.id, "attempt": self.attempt,
                             "data": data})


    def request(self, msg, timeout=None, on_progress=None, waits_end=False):
        """Sends a client request (a dict with its `type`) on the worker's
        connection and returns its `ok` answer, or with waits_end its `end`.
        Raises RequestError for an `error` answer, TaskCancelled when this
        task is cancelled meanwhile, TimeoutError after `timeout` seconds."""
        call = self._worker._send_call(self, msg, waits_end)
        return self._await(call, timeout, on_progress)

    def _await(self, call, timeout, on_progress):
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                if self.cancelled.is_set():
                    raise TaskCancelled("task %s was cancelled" % self.id)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError("no answer to %s within %ss" % (call.req, timeout))
                try:
                    line = call.lines.get(timeout=left)
                except queue.Empty:
                    continue
                if line is None:
                    continue  # woken: cancelled (checked above)
                kind = line.get("type")
                if kind == "_lost":
                    raise TaskCancelled("task %s: the connection to pincerd was lost" % self.id)
                if kind == "progress":
                    if on_progress is not None:
                        on_progress(line.get("data"))
                elif kind == "error":
                    self._worker._end_call(call)
                    raise RequestError(line.get("code"), line.get("message"))
                elif kind == "ok" and call.waits_end:
                    call.ok = line
                else:  # ok, or end
                    self._worker._end_call(call)
                    return line
        except TimeoutError:
            raise
        except BaseException:
            self._worker._end_call(call)
            raise

    def submit(self, payload=None, skills=(), wait=False, on_progress=None, **fields):
        """Submits a child task (parent: this task) and returns its id; with
        wait=True, waits and returns its end (a dict with `id`, `state`,
        `output`, `error`, `attempts`, ...). `fields` are other submit
        fields: priority, timeout, max_attempts, session, key, backoff."""
        msg = {"type": "submit", "skills": list(skills), "payload": payload}
        msg["parent"] = self.id
        msg.update(fields)
        if msg["parent"] is None:
            del msg["parent"]
        if wait:
            msg["wait"] = True
            return self.request(msg, on_progress=on_progress, waits_end=True)
        return self.request(msg)["id"]

    def submit_and_wait(self, payload=None, skills=(), on_progress=None, **fields):
        """submit(..., wait=True): a child's end."""
        return self.submit(payload, skills, wait=True, on_progress=on_progress, **fields)

    def wait(self, task_id, timeout=None, on_progress=None):
        """Waits for a task (a child, say) to end and returns its end: a dict
        with `id`, `state` (succeeded, failed, cancelled, timed_out),
        `output`, `error`, `attempts`, `errors`. on_progress(data) is called
        with each progress it reports meanwhile. After a TimeoutError the
        wait stays open: wait again for the same id to go on."""
        call = self._waits.pop(task_id, None)
        if call is None:
            call = self._worker._send_call(self, {"type": "wait", "id": task_id}, True)
        try:
            return self._await(call, timeout, on_progress)
        except TimeoutError:
            self._waits[task_id] = call
            raise

    def status(self, task_id):
        """The `status` of a task (a dict; see docs/protocol.md)."""
        return self.request({"type": "status", "id": task_id})

    def cancel_task(self, task_id):
        """Cancels a task (a child, say)."""
        return self.request({"type": "cancel", "id": task_id})

    def workers(self):
        """The daemon's `workers` answer."""
        return self.request({"type": "workers"})


def _json_depth_exceeds(value, limit):
    """True when lists and dicts in `value` nest more than `limit` levels
    (`[]` is 1). Iterative: no recursion limit to hit."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, (list, tuple)):
            children = v
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children)
    return False


class _Connection:
    """A socket with a lock around writes: task threads, the heartbeat thread
    and the reader all send on it."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.interval = 5.0  # the welcome's heartbeat_ms, in seconds
        self.last_heard = time.monotonic()  # when the daemon's last line came
        # Results sent here that pincerd may not have stored yet, oldest
        # first: (sent at, task id, attempt, result). The worker's _lock
        # guards it; None once the connection ended and they moved to
        # Worker._unsent.
        self.unconfirmed = collections.deque(maxlen=MAX_UNCONFIRMED)

    def send(self, msg):
        data = (json.dumps(msg, separators=(",", ":"), allow_nan=False) + "\n").encode()
        with self.lock:
            if self.closed.is_set():
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.close()
                return False

    def close(self):
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv
        except OSError:
            pass

    def dispose(self):
        """Closes and frees the socket; only its reader may call this."""
        self.close()
        with self.lock:
            self.sock.close()


def tls_context(ca, cert=None, key=None):
    """An ssl.SSLContext that trusts the CAs in the PEM file `ca` (and checks
    the host name), presenting `cert`/`key` when both are given."""
    if (cert is None) != (key is None):
        raise ValueError("tls_cert and tls_key go together")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        context.load_cert_chain(cert, key)
    return context


def _connect(addr, timeout, tls=None):
    if addr.startswith("unix:"):  # Unix sockets stay plain
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(addr[len("unix:"):])
        return sock
    host, _, port = addr.rpartition(":")
    host = host.strip("[]")
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls is not None:
        try:
            # Checks the certificate names `host` (a DNS name or an IP
            # address); sends it as SNI when it is a name.
            sock = tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
    return sock


def _recv(sock, lock):
    if not isinstance(sock, ssl.SSLSocket):
        return sock.recv(1 << 16)
    # OpenSSL allows one thread at a time in a connection, and writers hold
    # `lock`: wait for data outside the lock, read it inside.
    if not sock.pending():
        ready, _, _ = select.select([sock], [], [], sock.gettimeout())
        if not ready:
            raise socket.timeout("timed out")
    with lock:
        return sock.recv(1 << 16)


def _read_lines(sock, max_line_bytes, lock=None):
    """Yields the peer's lines; a line longer than the bound ends the stream.
    `lock` is the one writers hold (needed for a TLS socket)."""
    buf = b""
    while True:
        chunk = _recv(sock, lock)
        if not chunk:
            return
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl].rstrip(b"\r"), buf[nl + 1:]
            if line:
                yield line
        if len(buf) > max_line_bytes:
            log.error("the daemon sent a line longer than %d bytes", max_line_bytes)
            return


class _Load:
    """CPU (cores) and resident memory of this process, for heartbeats."""

    def __init__(self):
        self.last = None

    def sample(self):
        load = {}
        t = os.times()
        now, cpu = time.monotonic(), t.user + t.system + t.children_user + t.children_system
        if self.last and now > self.last[0]:
            load["cpu"] = round(max(0.0, cpu - self.last[1]) / (now - self.last[0]), 3)
        self.last = (now, cpu)
        try:
            with open("/proc/self/statm") as f:
                load["rss_bytes"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            pass
        return load


class Worker:
    def __init__(self, handler, skills=(), capacity=1, name=None, addr=None, token=None,
                 labels=None, max_line_bytes=MAX_LINE_BYTES, tls_ca=None, tls_cert=None,
                 tls_key=None):
        self.handler = handler
        self.skills = list(skills)
        self.capacity = int(capacity)
        self.name = name or "python@" + socket.gethostname()
        self.addr = addr or os.environ.get("PINCER_ADDR") or DEFAULT_ADDR
        # "A,B": a leader and its standbys, tried in turn (docs/protocol.md,
        # not_leader); a standby that names the leader sends us there next.
        self.addrs = [a.strip() for a in self.addr.split(",")]
        if not all(self.addrs):
            raise ValueError("an empty address in %r" % self.addr)
        self._next_addr = 0
        self._leader = None  # where a standby said the leader serves
        self._target = self.addrs[0]
        self.token = token if token is not None else os.environ.get("PINCER_TOKEN", "")
        self.labels = labels or {}
        self.spawn_id = os.environ.get("PINCER_SPAWN_ID")
        self.max_line_bytes = max_line_bytes
        tls_ca = tls_ca or os.environ.get("PINCER_TLS_CA") or None
        tls_cert = tls_cert or os.environ.get("PINCER_TLS_CERT") or None
        tls_key = tls_key or os.environ.get("PINCER_TLS_KEY") or None
        if (tls_cert or tls_key) and not tls_ca:
            raise ValueError("tls_cert and tls_key need tls_ca")
        # Files are read once, here: a missing or bad one fails at once.
        self.tls = tls_context(tls_ca, tls_cert, tls_key) if tls_ca else None
        self._stop = threading.Event()
        self._draining = False
        self._self_draining = False  # sent our own drain, waiting for "drained"
        self._running = {}  # task id -> Task; they run on across a reconnect
        # Results of tasks that ended while no daemon was connected: task id
        # -> (attempt, result), listed in the next hello and sent after it.
        self._unsent = {}
        # Cancelled tasks whose handler has not returned yet: they keep
        # their slot, and `stopped` goes out when the handler returns.
        self._stopping = {}
        self._lock = threading.Lock()
        self._conn = None
        self._welcomed = False
        self._load = _Load()
        self._max_json_depth = 64  # the daemon's, from its welcome
        self._calls = {}  # req -> _Call: handlers' requests on this connection
        self._next_req = 0

    def stop(self):
        """Leaves the loop in run(); safe from signal handlers and other threads."""
        self._stop.set()
        if self._conn:
            self._conn.close()

    def drain(self):
        """Asks pincerd for no new tasks, lets the running ones finish, and
        leaves run() once pincerd answers "drained" (the first SIGTERM does
        this). Without a connection it is stop(). Safe from signal handlers."""
        conn = self._conn
        if self._self_draining or self._stop.is_set():
            return
        if conn is None or conn.closed.is_set() or not self._welcomed:
            self.stop()
            return
        log.info("draining: no new tasks; finishing the running ones, then exiting")
        self._self_draining = True
        self._draining = True

        def send():
            if not conn.send({"type": "drain"}):
                self.stop()
        # Not from the handler itself: the interrupted thread may hold the
        # connection's write lock.
        threading.Thread(target=send, daemon=True).start()

    def run(self):
        """Serves tasks until drained or stopped, reconnecting (with jittered
        exponential backoff) whenever the daemon goes away."""
        delay = 0.1
        while not self._stop.is_set():
            welcomed = False
            following = self._leader is not None
            self._target = self._leader or self.addrs[self._next_addr % len(self.addrs)]
            self._leader = None
            try:
                welcomed = self._serve_one_connection()
            except (OSError, ValueError) as e:
                log.warning("connection to %s: %s", self._target, e)
            self._abandon_tasks()
            if self._draining or self._stop.is_set():
                return
            if not following:
                self._next_addr += 1  # after a failure or a loss: the next address
            if welcomed:
                delay = 0.1
            elif self._leader is not None and not following:
                continue  # to the leader a standby named, at once
            self._stop.wait(random.uniform(delay / 2, delay))
            delay = min(delay * 2, 5.0)

    def _serve_one_connection(self):
        conn = self._conn = _Connection(_connect(self._target, timeout=10, tls=self.tls))
        try:
            if self._stop.is_set():  # stop() ran before _conn was set
                return False
            return self._handshake_and_serve(conn)
        finally:
            conn.dispose()

    def _handshake_and_serve(self, conn):
        # heartbeat_ack: a daemon that stops answering (frozen, cut off)
        # is gone, though its socket may stay open for good.
        hello = {"type": "hello", "role": "worker", "proto": PROTO, "token": self.token,
                 "name": self.name, "skills": self.skills, "capacity": self.capacity,
                 "confirms_stop": True, "heartbeat_ack": True}
        if self.labels:
            hello["labels"] = self.labels
        if self.spawn_id:
            hello["spawn_id"] = self.spawn_id
        # The tasks still ours from an earlier connection: pincerd adopts
        # them, or tells us to drop them (cancel, reason not_adopted), rather
        # than starting them again (docs/protocol.md).
        with self._lock:
            held = [{"id": t.id, "attempt": t.attempt} for t in self._running.values()]
            held += [{"id": tid, "attempt": a} for tid, (a, _) in self._unsent.items()]
        hello["tasks"] = held[:self.capacity]
        if held:
            log.info("hello lists %d task(s) still held here", len(held))
        conn.send(hello)
        lines = _read_lines(conn.sock, self.max_line_bytes, conn.lock)
        try:
            welcome = json.loads(next(lines, b"{}"))  # the socket's 10s timeout bounds the wait
        except (ValueError, RecursionError):
            welcome = None
        if isinstance(welcome, dict) and welcome.get("code") == "not_leader":
            leader = welcome.get("leader")
            log.info("%s is a standby%s", self._target,
                     "; the leader serves on %s" % leader if leader else "")
            if isinstance(leader, str) and leader:
                self._leader = leader
            return False
        if not isinstance(welcome, dict) or welcome.get("type") != "welcome":
            log.error("daemon refused the handshake: %s", welcome)
            return False
        conn.sock.settimeout(None)
        conn.last_heard = time.monotonic()
        conn.interval = max(welcome.get("heartbeat_ms", 5000), 10) / 1000.0
        try:
            with self._lock:
                for task in self._running.values():
                    task._conn = conn  # their progress and results go here now
                unsent, self._unsent = list(self._unsent.items()), {}
                for tid, (attempt, result) in unsent:
                    conn.unconfirmed.append((conn.last_heard, tid, attempt, result))
                self._welcomed = True
            for _, (_, result) in unsent:
                conn.send(result)
            log.info("connected to %s as %s", self._target, welcome.get("id"))
            depth = welcome.get("max_json_depth")
            # The daemon's limits.max_json_depth (older daemons: the default, 64).
            self._max_json_depth = depth if isinstance(depth, int) and depth >= 2 else 64
            threading.Thread(target=self._heartbeats, args=(conn,), daemon=True).start()
            for line in lines:
                conn.last_heard = time.monotonic()
                self._on_line(conn, line)
        finally:
            self._connection_ended(conn)
        return True

    def _connection_ended(self, conn):
        # Results pincerd may never have read or stored go again as if they
        # ended while disconnected: the next hello lists their tasks. One
        # that did store them answers cancel not_adopted.
        conn.close()
        with self._lock:
            self._welcomed = False
            kept, conn.unconfirmed = conn.unconfirmed, None
            if self._draining or self._stop.is_set():
                kept = ()  # the worker leaves: nothing goes again
            for _, tid, attempt, result in kept:
                if tid not in self._running:  # else a later attempt runs here
                    self._unsent[tid] = (attempt, result)
        if kept:
            log.info("%d result(s) sent to %s may not be stored there; they go again after "
                     "the next welcome", len(kept), self._target)

    def _heartbeats(self, conn):
        last_beat = time.monotonic()
        while not conn.closed.is_set():
            now = time.monotonic()
            # A tick this late means this process was starved (a C call
            # holding the GIL): the daemon's answers may be waiting unread.
            stalled = now - last_beat > 1.5 * conn.interval
            last_beat = now
            silent = now - conn.last_heard
            if silent > 1.5 * conn.interval and not stalled:
                # It answers every heartbeat within milliseconds: frozen or
                # cut off, with a socket that may stay open for good.
                log.warning("no answer from the daemon at %s for %d ms (it answers every "
                            "heartbeat); leaving it", self._target, silent * 1000)
                conn.close()  # the reader sees the end and reconnects
                return
            conn.send({"type": "heartbeat", "load": self._load.sample()})
            conn.closed.wait(conn.interval)

    def _on_heartbeat_ack(self, conn):
        # pincerd has read every line sent before that heartbeat; a result it
        # read a whole interval ago is stored (a commit takes milliseconds).
        stored_before = time.monotonic() - conn.interval
        with self._lock:
            kept = conn.unconfirmed
            while kept and kept[0][0] < stored_before:
                kept.popleft()

    def _send_call(self, task, msg, waits_end):
        if task.cancelled.is_set():
            raise TaskCancelled("task %s was cancelled" % task.id)
        with self._lock:
            self._next_req += 1
            call = _Call(self._next_req, task, waits_end)
            self._calls[call.req] = call
            task._calls.add(call)
        msg = dict(msg, req=call.req)
        if not task._conn.send(msg):
            self._end_call(call)
            raise TaskCancelled("task %s: the connection to pincerd was lost" % task.id)
        return call

    def _end_call(self, call):
        with self._lock:
            self._calls.pop(call.req, None)
            call.task._calls.discard(call)

    def _on_answer(self, msg):
        with self._lock:
            call = self._calls.get(msg.get("req"))
            if call is not None and (msg["type"] == "end" or msg["type"] == "error" or (
                    msg["type"] == "ok" and not call.waits_end)):
                del self._calls[call.req]  # its last line
        if call is None:
            log.debug("an answer to no pending request: %.200r", msg)
            return
        call.lines.put(msg)

    def _on_line(self, conn, line):
        try:
            msg = json.loads(line)
            kind = msg["type"]
        except (ValueError, KeyError, TypeError, RecursionError):
            # RecursionError: nested deeper than Python's json can read; a
            # bad line like any other, never the end of the worker.
            log.warning("ignoring a bad line from the daemon: %.200r", line)
            return
        if not isinstance(msg, dict):
            return
        if kind in ("ok", "error", "end", "progress") and "req" in msg:
            # An answer to a handler's own request (docs/protocol.md,
            # "Subtasks: client requests from a worker").
            self._on_answer(msg)
        elif kind == "heartbeat_ack":
            self._on_heartbeat_ack(conn)
        elif kind == "task":
            self._on_task(conn, msg)
        elif kind == "cancel":
            tid = msg.get("id")
            with self._lock:
                task = self._running.get(tid)
                self._unsent.pop(tid, None)  # ended while disconnected: dropped
                kept = conn.unconfirmed
                if kept is not None and any(r[1] == tid for r in kept):
                    # Its result is not wanted: never listed again.
                    conn.unconfirmed = collections.deque(
                        (r for r in kept if r[1] != tid), maxlen=MAX_UNCONFIRMED)
                if task and msg.get("attempt", task.attempt) != task.attempt:
                    task = None  # a cancel for another attempt than ours
                elif task:
                    del self._running[tid]
                    self._stopping[tid] = task
                stopping = tid in self._stopping
            if task:
                log.info("task %s attempt %s %s", task.id, task.attempt,
                         msg.get("reason", "cancelled"))
                task._cancel()
            elif not stopping and isinstance(tid, str):
                # Not running here (its result crossed the cancel): stopped already.
                conn.send({"type": "stopped", "id": tid, "attempt": msg.get("attempt", 1)})
        elif kind == "drain":
            log.info("draining")
            with self._lock:
                self._draining = True
                idle = not self._running and not self._stopping and not self._self_draining
            if idle:
                conn.close()
        elif kind == "drained":
            # The answer to our own drain: pincerd holds no task of ours,
            # and every cancelled attempt's `stopped` has reached it.
            if self._self_draining:
                log.info("drained; exiting")
                conn.close()
        elif kind == "error":
            log.warning("daemon error %s: %s", msg.get("code"), msg.get("message"))

    def _on_task(self, conn, msg):
        if not isinstance(msg.get("id"), str):
            log.warning("ignoring a task without an id")
            return
        with self._lock:
            # A task sent before pincerd read our own drain is still ours.
            refuse = ("worker is draining" if self._draining and not self._self_draining else
                      "worker is at capacity (%d)" % self.capacity
                      if len(self._running) + len(self._stopping) >= self.capacity else None)
            if not refuse:
                task = self._running[msg["id"]] = Task(msg, self, conn)
        if refuse:
            conn.send({"type": "result", "id": msg["id"], "ok": False, "error": refuse,
                       "retryable": True})
            return
        threading.Thread(target=self._run_task, args=(conn, task), daemon=True).start()

    def _run_task(self, conn, task):
        def failure(error, retryable):
            return {"type": "result", "id": task.id, "attempt": task.attempt, "ok": False,
                    "error": error, "retryable": retryable}
        try:
            output = self.handler(task)
        except TaskError as e:
            result = failure(str(e), e.retryable)
        except Exception as e:  # noqa: BLE001 - any handler failure fails the attempt
            result = failure("%s: %s" % (type(e).__name__, e), True)
        else:
            result = {"type": "result", "id": task.id, "attempt": task.attempt, "ok": True,
                      "output": output}
            # Running it again would return the same thing: not retryable.
            try:
                json.dumps(output, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as e:
                result = failure("output is not JSON-serializable: %s" % e, False)
            else:
                # The result object is level 1: the output may nest one less.
                limit = self._max_json_depth - 1
                if _json_depth_exceeds(output, limit):
                    result = failure("output too deep: nested more than %d levels (the daemon's "
                                     "limits.max_json_depth = %d, less the result object)"
                                     % (limit, self._max_json_depth), False)
        with self._lock:
            mine = self._running.get(task.id) is task
            if mine:
                del self._running[task.id]
            stopped = self._stopping.get(task.id) is task
            if stopped:
                del self._stopping[task.id]
            conn = task._conn  # the connection now (a reconnect moves it)
            drained = (self._draining and not self._running and not self._stopping
                       and not self._self_draining)
        if task.usage is not None:
            result["usage"] = task.usage
        if mine and not task.cancelled.is_set():
            with self._lock:
                if not self._welcomed or conn.closed.is_set() or conn.unconfirmed is None:
                    # No daemon now: kept for the next hello (and sent after it).
                    self._unsent[task.id] = (task.attempt, result)
                    conn = None
                else:
                    # Kept until pincerd has surely stored it; if the
                    # connection ends first (a failed send closes it), its
                    # end moves it to _unsent.
                    conn.unconfirmed.append((time.monotonic(), task.id, task.attempt, result))
            if conn is not None:
                conn.send(result)
        elif stopped:
            # The handler of a cancelled attempt has returned: its slot is free.
            conn.send({"type": "stopped", "id": task.id, "attempt": task.attempt})
        if drained:
            conn.close()

    def _abandon_tasks(self):
        # Running tasks go on: the next hello lists them and pincerd adopts
        # them (docs/protocol.md). Not when we stop or drain: then handlers
        # are told to give up, as are cancelled ones and pending requests
        # (their answers will not come: the connection is gone).
        with self._lock:
            keep = not (self._draining or self._stop.is_set())
            tasks = list(self._stopping.values())
            self._stopping = {}
            if not keep:
                tasks += list(self._running.values())
                self._running, self._unsent = {}, {}
            calls, self._calls = list(self._calls.values()), {}
        for task in tasks:
            task._cancel()
        for call in calls:
            call.lines.put({"type": "_lost"})  # raises TaskCancelled in _await


def run_worker(handler, skills=(), capacity=1, name=None, addr=None, token=None, labels=None,
               tls_ca=None, tls_cert=None, tls_key=None):
    """Runs a worker until it is drained or stopped. The first SIGTERM/SIGINT
    drains it (Worker.drain: running tasks finish, then it returns), a second
    one stops it at once.

    addr ("HOST:PORT" or "unix:PATH") and token default to env PINCER_ADDR
    and PINCER_TOKEN; env PINCER_SPAWN_ID is sent when set. With tls_ca (env
    PINCER_TLS_CA) a TCP address is spoken to over TLS; tls_cert and tls_key
    (env PINCER_TLS_CERT, PINCER_TLS_KEY) are the client certificate."""
    worker = Worker(handler, skills=skills, capacity=capacity, name=name, addr=addr,
                    token=token, labels=labels, tls_ca=tls_ca, tls_cert=tls_cert,
                    tls_key=tls_key)
    restore = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            restore[sig] = signal.signal(sig, lambda *_: worker.stop()
                                         if worker._self_draining else worker.drain())
    try:
        worker.run()
    finally:
        for sig, old in restore.items():
            signal.signal(sig, old)
    return worker
