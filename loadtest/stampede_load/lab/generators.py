"""The load generators: wrk, stampede-openloop (closed and open loop) and raw impatient
clients, each bounded in connections and time."""

import os
import signal
import socket
import subprocess
import threading
import time

from .. import wrkparse

from .common import LOOPBACK, LUA, MAX_CONNECTIONS


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
    """stampede-openloop at a fixed `rate` for `seconds`: latency from intended send times;
    or, with `clients`, a closed loop of that many clients. Either way each client gives up
    at its deadline (`timeout_s`): it closes the connection and counts a timeout. Same
    interface as Wrk. `extra`: further stampede-openloop flags (a --retry policy)."""

    def __init__(self, binary, url, path, seconds, rate=None, connections=None, clients=None,
                 timeout_s=2, polite=False, extra=()):
        if not url.startswith('http://%s:' % LOOPBACK):
            raise ValueError('load goes to loopback only: ' + url)
        self.cmd = [binary, '--target', url[len('http://'):], '--path', path,
                    '--duration', str(int(seconds)), '--timeout', str(int(timeout_s * 1000))]
        if clients is not None:
            self.cmd += ['--closed', str(min(int(clients), MAX_CONNECTIONS))]
            if polite:
                self.cmd.append('--polite')
        else:
            self.cmd += ['--rate', '%g' % rate,
                         '--connections', str(min(int(connections), MAX_CONNECTIONS))]
        self.cmd += list(extra)
        self.seconds = seconds + timeout_s
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
