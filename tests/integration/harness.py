"""Starts the real stampede binary on ephemeral loopback ports and talks to it with real
HTTP clients (http.client, raw sockets). Standard library only."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

from stampede_load.promtext import Metrics

SOURCE = os.environ.get('STAMPEDE_SOURCE', os.path.abspath(os.path.join(
    os.path.dirname(__file__), '..', '..')))
BINARY = os.environ.get('STAMPEDE_BIN', os.path.join(SOURCE, 'build', 'stampede'))
# Set (e.g. 'thread') when BINARY is a sanitizer build: memory figures mean nothing there, and
# tests that hold thousands of connections hold fewer.
SANITIZED = os.environ.get('STAMPEDE_SANITIZE', '')


class Response:
    def __init__(self, status, headers, body, elapsed):
        self.status = status
        self.headers = headers
        self.body = body
        self.elapsed = elapsed

    def json(self):
        return json.loads(self.body)


def wait_for(predicate, timeout=10.0, interval=0.02):
    """Polls `predicate` until it returns a truthy value or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


SANITIZER_MARKS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:',
                   'WARNING: ThreadSanitizer', 'ERROR: ThreadSanitizer')


def check_sanitizers(log_lines):
    """Fails the test if the server printed a sanitizer report (sanitizer builds)."""
    text = ''.join(log_lines)
    for mark in SANITIZER_MARKS:
        if mark in text:
            raise AssertionError('sanitizer report from stampede:\n' + text[-6000:])


class Server:
    """One stampede process. Use as a context manager."""

    def __init__(self, config='', args=(), env=None, preexec_fn=None):
        self.dir = tempfile.mkdtemp(prefix='stampede-test-')
        os.chmod(self.dir, 0o755)  # readable by a server started as another user
        self.config_path = os.path.join(self.dir, 'stampede.yaml')
        self.write_config(config)
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.preexec_fn = preexec_fn
        self.log = []
        self.proc = None

    def write_config(self, text):
        """Rewrites the config file (as an editor would); the server may pick it up live."""
        # Written aside, stamped, and renamed into place, as editors save: the server sees one
        # change. A reload that polls between a truncation and its write would read an empty
        # file, a valid config of defaults (a drain of 5 s instead of the one being written);
        # one between the rename and a later stamp would reload twice.
        aside = self.config_path + '.new'
        with open(aside, 'w') as f:
            f.write(text)
        # Visible to an mtime check even within the same tick.
        now = time.time()
        os.utime(aside, (now, now + 0.001 * (hash(text) % 1000)))
        os.replace(aside, self.config_path)

    def start(self, expect_listening=True):
        cmd = [BINARY, '--config', self.config_path, '--listen', '127.0.0.1:0',
               '--admin-listen', '127.0.0.1:0'] + self.args
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=self.env, text=True, preexec_fn=self.preexec_fn)
        listening = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.log.append(line)
                if 'listening' in line:
                    listening.set()

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        if not expect_listening:
            return self
        if not listening.wait(15):
            self.stop()
            raise RuntimeError('stampede did not start:\n' + ''.join(self.log))
        line = next(l for l in self.log if 'listening' in l)
        self.main = re.search(r'main=(\S+)', line).group(1)
        self.admin = re.search(r'admin=(\S+)', line).group(1)
        self.main_port = int(self.main.rsplit(':', 1)[1])
        self.admin_port = int(self.admin.rsplit(':', 1)[1])
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.pump.join(5)
            check_sanitizers(self.log)
        return self.proc.returncode if self.proc else None

    def wait_exit(self, timeout=10):
        """Waits for the process to exit; returns its status with the whole log read."""
        code = self.proc.wait(timeout)
        self.pump.join(timeout)
        check_sanitizers(self.log)
        return code

    def signal(self, sig):
        self.proc.send_signal(sig)

    # --- clients -------------------------------------------------------------------------
    def _request(self, port, path, method='GET', timeout=30, headers=None, body=None):
        start = time.monotonic()
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            body = r.read().decode()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, body,
                            time.monotonic() - start)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self._request(self.main_port, path, **kw)

    def admin_get(self, path, **kw):
        return self._request(self.admin_port, path, **kw)

    def admin_post(self, path, **kw):
        return self._request(self.admin_port, path, method='POST', **kw)

    def metrics(self):
        return Metrics(self.admin_get('/metrics', timeout=10).body)

    def config(self):
        return self.admin_get('/config', timeout=10).json()

    def connect(self):
        """A raw socket to the main port."""
        s = socket.create_connection(('127.0.0.1', self.main_port), timeout=30)
        return s

    def send_raw(self, data, read_timeout=5.0):
        """Sends raw bytes; returns everything read until the server closes or times out."""
        s = self.connect()
        s.settimeout(read_timeout)
        try:
            s.sendall(data)
            chunks = []
            while True:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    return b''.join(chunks), False
                except ConnectionResetError:
                    return b''.join(chunks), True
                if not chunk:
                    return b''.join(chunks), True
                chunks.append(chunk)
        finally:
            s.close()


def request_bytes(path, extra=''):
    return ('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n' % (path, extra)).encode()


def in_threads(n, fn):
    """Runs fn(i) for i in range(n) concurrently; returns the results in order."""
    results = [None] * n

    def run(i):
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - a test inspects the exception
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def hold_requests(server, n, path):
    """Opens n connections that each send one request for `path` and keep waiting; returns
    the sockets (close them to leave)."""
    sockets = []
    for _ in range(n):
        s = server.connect()
        s.sendall(request_bytes(path))
        sockets.append(s)
    return sockets
