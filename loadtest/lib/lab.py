"""The load-test lab: starts stampede, samples its /metrics, runs wrk and raw clients.

Everything here is bounded: connections (capped), durations (each process gets a hard
timeout), and targets (127.0.0.1 only). Processes started here are ended on exit, also when
interrupted (see Lab.close)."""

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from promtext import Metrics
import wrkparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
LUA = os.path.join(ROOT, 'loadtest', 'wrk', 'stampede.lua')
LOOPBACK = '127.0.0.1'
MAX_CONNECTIONS = 4000  # hard cap on any one load generator's connections


def raise_fd_limit():
    """Lets this process and its children (wrk, stampede) open many sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Progress:
    """One status line, rewritten in place on a terminal, printed now and then otherwise."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def show(self, text, force=False):
        now = time.monotonic()
        if self.tty:
            self.stream.write('\r\033[K' + text)
            self.stream.flush()
        elif force or now - self.last >= 5:
            self.stream.write(text + '\n')
            self.stream.flush()
            self.last = now

    def done(self):
        if self.tty:
            self.stream.write('\r\033[K')
            self.stream.flush()


class Server:
    """One stampede process on ephemeral loopback ports."""

    def __init__(self, binary, config_text, workdir, name):
        self.config_path = os.path.join(workdir, '%s.yaml' % name)
        with open(self.config_path, 'w') as f:
            f.write(config_text)
        self.log_path = os.path.join(workdir, '%s.log' % name)
        self.log = open(self.log_path, 'w')
        self.proc = subprocess.Popen(
            [binary, '--config', self.config_path, '--listen', LOOPBACK + ':0',
             '--admin-listen', LOOPBACK + ':0'],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 15
        line = None
        while time.monotonic() < deadline and line is None:
            if self.proc.poll() is not None:
                break
            with open(self.log_path) as f:
                line = next((l for l in f if 'listening' in l), None)
            time.sleep(0.05)
        if line is None:
            self.stop()
            raise RuntimeError('stampede did not start; see ' + self.log_path)
        self.main_port = int(re.search(r'main=\S+:(\d+)', line).group(1))
        self.admin_port = int(re.search(r'admin=\S+:(\d+)', line).group(1))
        self.url = 'http://%s:%d' % (LOOPBACK, self.main_port)

    def metrics(self, timeout=2.0):
        with urllib.request.urlopen('http://%s:%d/metrics' % (LOOPBACK, self.admin_port),
                                    timeout=timeout) as r:
            return Metrics(r.read().decode())

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


# The series sampled from /metrics, in CSV column order.
SERIES = [
    ('os_threads', lambda m: m.value('stampede_os_threads')),
    ('tasks_running', lambda m: m.value('stampede_tasks', state='running')),
    ('tasks_queued', lambda m: m.value('stampede_tasks', state='queued')),
    ('queue_depth', lambda m: m.value('stampede_queue_depth')),
    ('rss_bytes', lambda m: m.value('process_resident_memory_bytes')),
    ('cpu_seconds', lambda m: m.value('process_cpu_seconds_total')),
    ('connections', lambda m: m.value('stampede_connections_active')),
    ('requests', lambda m: m.value('stampede_http_requests_total')),
    ('ok', lambda m: sum(v for l, v in m.matching('stampede_http_requests_total')
                         if l['code'].startswith('2'))),
    ('rejected', lambda m: m.value('stampede_rejected_total')),
    ('cancelled', lambda m: m.value('stampede_cancelled_total')),
    ('disconnects', lambda m: m.value('stampede_client_disconnects_total')),
    ('wasted_seconds', lambda m: m.value('stampede_wasted_work_seconds_total')),
]


class Sampler(threading.Thread):
    """Scrapes /metrics several times a second into rows (t, series..., histogram)."""

    def __init__(self, server, interval=0.2):
        super().__init__(daemon=True)
        self.server = server
        self.interval = interval
        self.rows = []
        self.buckets = []  # (t, {le: count}) of the request-duration histogram
        self.stopping = threading.Event()
        self.t0 = time.monotonic()
        self.failures = 0

    def sample(self):
        try:
            m = self.server.metrics()
        except OSError:
            self.failures += 1
            return None
        t = time.monotonic() - self.t0
        row = {'t': round(t, 3)}
        for name, fn in SERIES:
            row[name] = fn(m)
        hist = {}
        for l, v in m.matching('stampede_http_success_duration_seconds_bucket'):
            hist[l['le']] = hist.get(l['le'], 0) + v
        self.rows.append(row)
        self.buckets.append((t, hist))
        return row

    def run(self):
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def stop(self):
        self.stopping.set()
        self.join(10)
        self.sample()

    def latest(self):
        return self.rows[-1] if self.rows else {}

    def peak(self, name):
        return max((r[name] for r in self.rows), default=0)


class Wrk:
    """A wrk process against `url` + `path`, bounded in connections and time."""

    def __init__(self, url, path, connections, seconds, timeout_s=2, threads=2, polite=False):
        if not url.startswith('http://%s:' % LOOPBACK):
            raise ValueError('load goes to loopback only: ' + url)
        connections = min(int(connections), MAX_CONNECTIONS)
        threads = max(1, min(threads, os.cpu_count() or 1, connections))
        self.cmd = ['wrk', '-t%d' % threads, '-c%d' % connections, '-d%ds' % seconds,
                    '--timeout', '%ds' % timeout_s, '-s', LUA, url, '--', path]
        if polite:
            self.cmd.append('polite')  # honour Retry-After after a 503
        self.seconds = seconds
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)

    def result(self):
        try:
            out, _ = self.proc.communicate(timeout=self.seconds + 30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
        self.output = out
        return wrkparse.parse(out)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class OpenLoop(Wrk):
    """stampede-openloop at a fixed `rate` for `seconds`: latency from intended send times.
    Same interface as Wrk."""

    def __init__(self, binary, url, path, rate, seconds, connections, timeout_s=2):
        if not url.startswith('http://%s:' % LOOPBACK):
            raise ValueError('load goes to loopback only: ' + url)
        self.cmd = [binary, '--target', url[len('http://'):], '--path', path,
                    '--rate', '%g' % rate, '--duration', str(int(seconds)),
                    '--connections', str(min(int(connections), MAX_CONNECTIONS)),
                    '--timeout', str(int(timeout_s * 1000))]
        self.seconds = seconds
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)


def impatient_clients(port, path, clients, seconds, give_up_s):
    """`clients` threads that each send a request, wait `give_up_s`, and close without reading
    the answer, over and over for `seconds`. Returns how many requests were abandoned and
    how many got their answer in time anyway."""
    deadline = time.monotonic() + seconds
    counts = {'abandoned': 0, 'answered': 0, 'connect_errors': 0}
    lock = threading.Lock()
    request = ('GET %s HTTP/1.1\r\nHost: %s\r\n\r\n' % (path, LOOPBACK)).encode()

    def client():
        while time.monotonic() < deadline:
            try:
                s = socket.create_connection((LOOPBACK, port), timeout=2)
            except OSError:
                with lock:
                    counts['connect_errors'] += 1
                time.sleep(0.05)
                continue
            try:
                s.sendall(request)
                s.settimeout(give_up_s)
                try:
                    answered = bool(s.recv(1))
                except (socket.timeout, OSError):
                    answered = False
            finally:
                s.close()
            with lock:
                counts['answered' if answered else 'abandoned'] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + give_up_s + 10)
    return counts


class Run:
    """One mode's run: a fresh server with its sampler going, and the wrk processes started
    through `wrk()`. On exit, however it is left (Ctrl-C included), the wrk processes are
    killed, the sampler takes a last sample and the server is stopped."""

    def __init__(self, binary, config_text, workdir, name):
        self.server = Server(binary, config_text, workdir, name)
        self.sampler = Sampler(self.server)
        self.procs = []

    def __enter__(self):
        self.sampler.start()
        return self

    def wrk(self, path, connections, seconds, **kw):
        w = Wrk(self.server.url, path, connections, seconds, **kw)
        self.procs.append(w)
        return w

    def open_loop(self, binary, path, rate, seconds, connections):
        g = OpenLoop(binary, self.server.url, path, rate, seconds, connections)
        self.procs.append(g)
        return g

    def __exit__(self, *exc):
        for w in self.procs:
            w.kill()
        self.sampler.stop()
        self.server.stop()
