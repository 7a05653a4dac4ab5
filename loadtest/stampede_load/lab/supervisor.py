"""One stampede process on loopback ports, and the supervisor that notices its death
(an OOM kill), restarts it on the same ports and times its recovery."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

from ..promtext import Metrics

from .common import LOOPBACK


class Server:
    """One stampede process on loopback ports (ephemeral the first time; the same ones when
    restarted), optionally inside a memory cgroup. `announce(name, server)`, when the driver
    sets it, is called once the server first listens: it prints the live page's address."""

    announce = None
    default_admin_port = 0  # taken when none is given: a lesson's servers share one live page
    # What the run says it is (title, predict, watch): posted to every server as it starts,
    # so the live page's banner shows it (POST /annotations).
    banner = None

    def __init__(self, binary, config_text, workdir, name, cgroup=None, admin_port=0):
        self.binary = binary
        self.cgroup = cgroup
        self.config_path = os.path.join(workdir, '%s.yaml' % name)
        with open(self.config_path, 'w') as f:
            f.write(config_text)
        self.log_path = os.path.join(workdir, '%s.log' % name)
        self.log = open(self.log_path, 'w')
        self.main_port = 0
        # 0: an ephemeral port (kept across restarts)
        self.admin_port = admin_port or Server.default_admin_port
        self.starts = 0
        self.name = name
        self._spawn()
        self.url = 'http://%s:%d' % (LOOPBACK, self.main_port)
        if Server.announce:
            Server.announce(name, self)

    def _spawn(self, attempts=1):
        for attempt in range(attempts):
            self._spawn_once()
            if self.main_port:
                return
            time.sleep(0.2 * (attempt + 1))
        raise RuntimeError('stampede did not start; see ' + self.log_path)

    def _spawn_once(self):
        offset = self.log.tell()
        cmd = (self.cgroup.wrapper if self.cgroup else []) + [
            self.binary, '--config', self.config_path,
            '--listen', '%s:%d' % (LOOPBACK, self.main_port),
            '--admin-listen', '%s:%d' % (LOOPBACK, self.admin_port)]
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=self.cgroup.preexec() if self.cgroup else None)
        self.starts += 1
        deadline = time.monotonic() + 15
        line = None
        while time.monotonic() < deadline and line is None:
            if self.proc.poll() is not None:
                break
            with open(self.log_path) as f:
                f.seek(offset)
                line = next((l for l in f if 'listening' in l), None)
            time.sleep(0.02)
        if line is None:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            if self.starts == 1:
                self.log.close()
                raise RuntimeError('stampede did not start; see ' + self.log_path)
            return
        self.main_port = int(re.search(r'main=\S+:(\d+)', line).group(1))
        self.admin_port = int(re.search(r'admin=\S+:(\d+)', line).group(1))
        if Server.banner:
            self.annotate('start', **Server.banner)

    def annotate(self, kind, title, **fields):
        """Posts one annotation (start, event or verdict) for the live page and Grafana. The
        presenter's aid only: a server that has just died is not an error here."""
        body = json.dumps(dict(fields, kind=kind, title=title)).encode()
        req = urllib.request.Request('http://%s:%d/annotations' % (LOOPBACK, self.admin_port),
                                     data=body, method='POST',
                                     headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def restart(self):
        """Starts the server again on the same ports, as a supervisor would."""
        self.log.write('--- restarted by the load-test driver ---\n')
        self.log.flush()
        self._spawn(attempts=10)

    def answers(self, timeout=0.5):
        """True if the main port answers /healthz now."""
        try:
            with urllib.request.urlopen('%s/healthz' % self.url, timeout=timeout) as r:
                return r.status == 200
        except OSError:
            return False

    def get_json(self, path, timeout=30.0):
        """A main-port JSON answer that must be a 2xx (a lab's figures)."""
        with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
            return json.loads(r.read().decode())

    def admin(self, path, method='GET', timeout=5.0):
        """An admin-port JSON answer (GET /labs, POST /labs/reset)."""
        req = urllib.request.Request('http://%s:%d%s' % (LOOPBACK, self.admin_port, path),
                                     method=method)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read().decode())

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


class Supervisor(threading.Thread):
    """Does what a process supervisor does for a server that dies: notices the exit (a kill
    by SIGKILL, and the cgroup's OOM-kill count), starts it again with the same config and
    ports, and measures the time from the death until the main port answers again.
    `backoff` = (first, most) seconds: wait before each restart, doubling with every death,
    as Kubernetes' CrashLoopBackOff does (10 s to 5 min there); None restarts at once."""

    def __init__(self, server, t0, backoff=None):
        super().__init__(daemon=True)
        self.server = server
        self.t0 = t0
        self.backoff = backoff
        self.deaths = []  # {'t', 'signal', 'exit', 'oom_kill', 'recovery_s'}
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            code = self.server.proc.poll()
            if code is None:
                self.stopping.wait(0.02)
                continue
            died = time.monotonic()
            cg = self.server.cgroup
            kills = cg.oom_kills() if cg else None
            event = {'t': round(died - self.t0, 3),
                     'signal': -code if code < 0 else None, 'exit': code if code >= 0 else None,
                     'oom_kills_counted': kills, 'recovery_s': None}
            self.deaths.append(event)
            if self.backoff:
                first, most = self.backoff
                event['backoff_s'] = min(most, first * 2 ** (len(self.deaths) - 1))
                self.stopping.wait(event['backoff_s'])
            if self.stopping.is_set():
                return
            try:
                self.server.restart()
            except RuntimeError:
                event['restart_failed'] = True
                return
            while not self.stopping.is_set() and time.monotonic() - died < 60:
                if self.server.proc.poll() is not None:
                    break  # died again before it answered: counted on the next turn
                if self.server.answers():
                    event['recovery_s'] = round(time.monotonic() - died, 3)
                    break
                self.stopping.wait(0.02)

    def stop(self):
        self.stopping.set()
        self.join(30)

    def oom_kills(self):
        """Deaths that were OOM kills: by the cgroup's count where it can be read, else the
        kills by SIGKILL (nothing else here sends one)."""
        cg = self.server.cgroup
        counted = cg.oom_kills() if cg else None
        if counted is not None:
            return counted
        return sum(1 for d in self.deaths if d['signal'] == signal.SIGKILL)


# The series sampled from /metrics, in CSV column order.
