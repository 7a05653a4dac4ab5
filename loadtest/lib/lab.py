"""The load-test lab: starts stampede, samples its /metrics, runs wrk and raw clients.

Everything here is bounded: connections (capped), durations (each process gets a hard
timeout), and targets (127.0.0.1 only). Processes started here are ended on exit, also when
interrupted (see Lab.close)."""

import json
import os
import re
import resource
import shutil
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


def free_port(port):
    """`port` if nothing listens on it on loopback, else 0 (an ephemeral one)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((LOOPBACK, port))
        return port
    except OSError:
        return 0
    finally:
        probe.close()


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

    def line(self, text):
        """A line that stays (not overwritten by the next progress update)."""
        self.stream.write(('\r\033[K' if self.tty else '') + text + '\n')
        self.stream.flush()

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


def parse_size(text):
    """'192M', '1G', '512k', '1048576' -> bytes; 'none' -> None. Raises ValueError."""
    t = str(text).strip().lower()
    if t in ('none', 'off', '0', ''):
        return None
    units = {'k': 2**10, 'm': 2**20, 'g': 2**30}
    t = t[:-1] if t.endswith('b') and len(t) > 1 and t[-2] in units else t
    if t[-1] in units:
        return int(float(t[:-1]) * units[t[-1]])
    return int(t)


def _own_cgroup(controller):
    """This process's cgroup path in the v1 hierarchy of `controller` ('' for v2)."""
    try:
        with open('/proc/self/cgroup') as f:
            for line in f:
                _, names, path = line.rstrip('\n').split(':', 2)
                if controller in names.split(',') or (controller == '' and names == ''):
                    return path
    except OSError:
        pass
    return None


class MemoryCgroup:
    """A memory cgroup made for one server, so the kernel's OOM killer ends that server when it
    passes `limit` bytes, never anything else on the machine. cgroup v2 (`memory.max`) or v1
    (`memory.limit_in_bytes`), made beside this process's own cgroup and removed by close();
    when not root, `systemd-run --user --scope -p MemoryMax=` instead. If none can be had,
    `why` says why and the server runs without a limit."""

    def __init__(self, limit, name):
        self.limit = limit
        self.name = name
        self.path = None       # the cgroup folder we made
        self.version = None    # 'v2', 'v1' or 'systemd-run'
        self.wrapper = []      # command prefix (systemd-run) when not made by hand
        self.why = None
        errors = []
        if os.geteuid() == 0:
            for make in (self._make_v2, self._make_v1):
                try:
                    if make():
                        return
                except OSError as e:
                    errors.append('%s: %s' % (make.__name__[6:], e))
        elif shutil.which('systemd-run'):
            probe = subprocess.run(['systemd-run', '--user', '--scope', '--quiet', '-p',
                                    'MemoryMax=%d' % limit, 'true'], capture_output=True,
                                   text=True, timeout=20)
            if probe.returncode == 0:
                self.version = 'systemd-run'
                self.wrapper = ['systemd-run', '--user', '--scope', '--quiet', '-p',
                                'MemoryMax=%d' % limit, '-p', 'MemorySwapMax=0', '--']
                return
            errors.append('systemd-run --user --scope: ' + (probe.stderr.strip() or 'failed'))
        else:
            errors.append('not root, and no systemd-run for a user scope')
        self.why = '; '.join(errors) or 'no writable memory cgroup hierarchy'

    def _make_v2(self):
        root = '/sys/fs/cgroup'
        if not os.path.exists(os.path.join(root, 'cgroup.controllers')):
            return False
        with open(os.path.join(root, 'cgroup.controllers')) as f:
            if 'memory' not in f.read().split():
                return False
        own = _own_cgroup('') or '/'
        # Beside our own cgroup (a process may not sit in a cgroup whose children have
        # controllers), falling back to the root.
        for parent in {os.path.dirname(own.rstrip('/')) or '/', '/'}:
            base = os.path.join(root, parent.lstrip('/'))
            try:
                with open(os.path.join(base, 'cgroup.subtree_control'), 'w') as f:
                    f.write('+memory')
            except OSError:
                pass
            path = os.path.join(base, self.name)
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            if not os.path.exists(os.path.join(path, 'memory.max')):
                os.rmdir(path)
                continue
            with open(os.path.join(path, 'memory.max'), 'w') as f:
                f.write(str(self.limit))
            if os.path.exists(os.path.join(path, 'memory.swap.max')):
                with open(os.path.join(path, 'memory.swap.max'), 'w') as f:
                    f.write('0')
            self.path, self.version = path, 'v2'
            return True
        return False

    def _make_v1(self):
        root = '/sys/fs/cgroup/memory'
        if not os.path.exists(os.path.join(root, 'memory.limit_in_bytes')):
            return False
        own = _own_cgroup('memory') or '/'
        for parent in (own, '/'):
            path = os.path.join(root, parent.lstrip('/'), self.name)
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            except OSError:
                continue
            with open(os.path.join(path, 'memory.limit_in_bytes'), 'w') as f:
                f.write(str(self.limit))
            memsw = os.path.join(path, 'memory.memsw.limit_in_bytes')
            if os.path.exists(memsw):  # no swapping our way out of the limit
                try:
                    with open(memsw, 'w') as f:
                        f.write(str(self.limit))
                except OSError:
                    pass
            self.path, self.version = path, 'v1'
            return True
        return False

    @property
    def active(self):
        return self.version is not None

    def describe(self):
        if not self.active:
            return 'no memory limit (%s)' % self.why
        where = self.path if self.path else 'a systemd user scope'
        return '%.0f MiB memory limit (cgroup %s, %s)' % (self.limit / 2**20, self.version, where)

    def preexec(self):
        """For Popen: puts the child into the cgroup before it runs the server."""
        if not self.path:
            return None
        procs = os.path.join(self.path, 'cgroup.procs')

        def enter():
            with open(procs, 'w') as f:
                f.write(str(os.getpid()))
        return enter

    def oom_kills(self):
        """The kernel's count of OOM kills in this cgroup (None where it cannot be read)."""
        name = {'v2': 'memory.events', 'v1': 'memory.oom_control'}.get(self.version)
        if not name:
            return None
        try:
            with open(os.path.join(self.path, name)) as f:
                for line in f:
                    key, _, value = line.partition(' ')
                    if key == 'oom_kill':
                        return int(value)
        except OSError:
            return None
        return None

    def close(self):
        if self.path:
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)  # the killed process is still being torn down
            self.path = None


class Server:
    """One stampede process on loopback ports (ephemeral the first time; the same ones when
    restarted), optionally inside a memory cgroup."""

    def __init__(self, binary, config_text, workdir, name, cgroup=None, admin_port=0):
        self.binary = binary
        self.cgroup = cgroup
        self.config_path = os.path.join(workdir, '%s.yaml' % name)
        with open(self.config_path, 'w') as f:
            f.write(config_text)
        self.log_path = os.path.join(workdir, '%s.log' % name)
        self.log = open(self.log_path, 'w')
        self.main_port = 0
        self.admin_port = admin_port  # 0: an ephemeral port (kept across restarts)
        self.starts = 0
        self._spawn()
        self.url = 'http://%s:%d' % (LOOPBACK, self.main_port)

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
    ports, and measures the time from the death until the main port answers again."""

    def __init__(self, server, t0):
        super().__init__(daemon=True)
        self.server = server
        self.t0 = t0
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
    ('ds_capacity', lambda m: m.value('stampede_downstream_capacity')),
    ('ds_in_use', lambda m: m.value('stampede_downstream_in_use')),
    ('ds_waiting', lambda m: m.value('stampede_downstream_waiting')),
    ('request_memory', lambda m: m.value('stampede_request_memory_bytes')),
    ('lab_leaked', lambda m: m.value('stampede_lab_leaked')),
    ('lab_waits', lambda m: m.value('stampede_lab_waits')),
    # Which process answered: a restart (after an OOM kill) changes it, and no rate or
    # quantile is taken across one.
    ('started', lambda m: m.value('process_start_time_seconds')),
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
            # The workload's answers only: the supervisor's /healthz probes after a restart
            # (sub-millisecond) would otherwise pass for fast answers of a dying server.
            if l.get('handler') == 'healthz':
                continue
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
    """stampede-openloop at a fixed `rate` for `seconds`: latency from intended send times;
    or, with `clients`, a closed loop of that many clients. Either way each client gives up
    at its deadline (`timeout_s`): it closes the connection and counts a timeout. Same
    interface as Wrk."""

    def __init__(self, binary, url, path, seconds, rate=None, connections=None, clients=None,
                 timeout_s=2, polite=False):
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


class Run:
    """One mode's run: a fresh server (inside a memory cgroup when `memory_limit` is set, and
    restarted by a supervisor if it dies) with its sampler going, and the load generators
    started through `wrk()` / `open_loop()` / `clients()`. On exit, however it is left (Ctrl-C
    included), the generators are killed, the sampler takes a last sample, the server is
    stopped and the cgroup removed."""

    def __init__(self, binary, config_text, workdir, name, memory_limit=None, admin_port=0):
        self.cgroup = None
        self.memory_note = 'no memory limit'  # what the report says of the limit
        if memory_limit:
            self.cgroup = MemoryCgroup(memory_limit, 'stampede-%d-%s' % (os.getpid(), name))
            self.memory_note = self.cgroup.describe()
            if not self.cgroup.active:
                self.cgroup = None
        try:
            self.server = Server(binary, config_text, workdir, name, self.cgroup, admin_port)
        except BaseException:
            if self.cgroup:
                self.cgroup.close()
            raise
        self.sampler = Sampler(self.server)
        self.supervisor = Supervisor(self.server, self.sampler.t0)
        self.procs = []

    def __enter__(self):
        self.sampler.start()
        self.supervisor.start()
        return self

    def _started(self, g):
        g.started_at = time.monotonic() - self.sampler.t0
        self.procs.append(g)
        return g

    def wrk(self, path, connections, seconds, **kw):
        return self._started(Wrk(self.server.url, path, connections, seconds, **kw))

    def open_loop(self, binary, path, rate, seconds, connections, timeout_s=2):
        return self._started(OpenLoop(binary, self.server.url, path, seconds, rate=rate,
                                      connections=connections, timeout_s=timeout_s))

    def clients(self, binary, path, clients, seconds, timeout_s=2, polite=True):
        return self._started(OpenLoop(binary, self.server.url, path, seconds, clients=clients,
                                      timeout_s=timeout_s, polite=polite))

    def __exit__(self, *exc):
        for w in self.procs:
            w.kill()
        self.supervisor.stop()
        self.sampler.stop()
        self.server.stop()
        if self.cgroup:
            self.cgroup.close()
