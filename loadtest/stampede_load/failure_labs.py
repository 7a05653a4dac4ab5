"""The failure labs under load: `loadtest/run labs`.

Each lab's unsafe variant and its fix run under concurrent load in the modes where they show
something, on a fresh server each; the figures come from the server's own counters (GET /labs,
/metrics) and from clients with deadlines. Returns one row per lab and mode for the summary
table, with the detail tables and plots as extra sections."""

import dataclasses
import os
import random
import socket
import threading
import time

from . import lab
from . import records
from . import report

MODES = ['blocking', 'thread_per_request', 'bounded', 'coroutine']


# The labs' rows: one kind per lab, each a mode and a variant run under load. Keyword-only, so
# that a row's own fields follow the section (`path`) and plots that labs() sets on it.
@dataclasses.dataclass(kw_only=True)
class LabRow(records.Row):
    variant: str
    path: str = ''
    plots: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(kw_only=True)
class CounterRow(LabRow):
    clients: int
    expected: int        # increments asked for
    lost: int
    per_s: object = None  # increments per second (under load)
    lost_pct: float = 0.0


@dataclasses.dataclass(kw_only=True)
class ReserveRow(LabRow):
    stock: int
    sold: int
    oversold: int


@dataclasses.dataclass(kw_only=True)
class LeakRow(LabRow):
    asked: int
    answered_504: int
    leaked: int
    threads_grew: int
    tasks_after: object
    rss_grew_mib: float
    healthz_after: int   # its status (0: no answer)


@dataclasses.dataclass(kw_only=True)
class DeadlockRow(LabRow):
    break_cycles: str    # labs.deadlock_break: yes or no
    goodput_before: float
    goodput_after: float
    deadlocks: float
    stuck_at_end: float
    detected_after_ms: object
    victims: int
    healthz_after: int


@dataclasses.dataclass(kw_only=True)
class NestedRow(LabRow):
    goodput_before: float
    goodput_after: float
    starved: int
    parents_stuck: int
    detected_after_ms: object
    healthz_after: int


@dataclasses.dataclass(kw_only=True)
class CancelRow(LabRow):
    abandoned: int
    wasted_s: float


@dataclasses.dataclass(kw_only=True)
class LockRow(LabRow):
    goodput: float
    waiting_peak: float
    threads_grew: float
    mean_wait_ms: float


@dataclasses.dataclass(kw_only=True)
class CpuRow(LabRow):
    threads: object      # a count, or 'a thread each'
    wall_ms: float
    work_ms: float
    best_ms: float
    speedup: float


@dataclasses.dataclass(kw_only=True)
class StormRow(LabRow):
    puts_per_s: float
    cleanups_peak: float
    threads_peak: float
    tasks_peak: float
    cleanup_cpu_pct: float
    cpu_pct: float
    healthz_p90_ms: object
    refused: int
    queue: int           # labs.cleanup_queue
    max_cleanups: int    # labs.max_cleanups


@dataclasses.dataclass(kw_only=True)
class LabSummary(records.Row):
    """A lab's line of the labs' table, and its verdict."""
    lab: str
    unsafe: str
    symptom: str
    fixed: str
    detector: str
    verdict: str
    path: str = 'the labs'
    wall_s: object = None  # the first summary's: the whole run's


class Params:
    def __init__(self, quick):
        self.quick = quick
        self.hammer_s = 1 if quick else 2       # counter and reserve load per variant
        self.leak_s = 2 if quick else 4         # leak load per variant
        self.leak_rate = 30 if quick else 50    # leak requests per second
        self.lock_s = 3 if quick else 6         # each deadlock / starvation run
        self.clients = 8
        self.global_s = 2 if quick else 4       # the global lock, per mode and variant
        self.storm_s = 3 if quick else 6        # the cleanup storm, per mode and variant


def config(args, mode, why=None, **extra):
    """The model with the mode, and a small pool that waits long: a lab's failure shows once a
    few workers are stuck (a leak, a deadlock, a starved pool), and its queue must not time
    out the requests that show it. `extra`: more keys, dotted with '__' ('labs__stock')."""
    overrides = {'mode': mode, 'bounded.workers': 4, 'bounded.queue_capacity': 16,
                 'bounded.queue_timeout_ms': 10000, 'shutdown.drain_timeout_ms': 1000}
    overrides.update({k.replace('__', '.'): v for k, v in extra.items()})
    return args.model.config_text(overrides, 'labs: the mode, a pool of 4 that waits, stuck '
                                  'work given 1 s at shutdown' + ('; ' + why if why else ''))


class Clients:
    """`n` client threads sending `next_path()` in a closed loop for `seconds`, each giving up
    at `deadline_s` (it closes the connection, as a client with a deadline does). Records
    (t, status) per answer, t from `t0`; status 0 is a timeout."""

    def __init__(self, port, next_path, n, seconds, t0, deadline_s=2.0):
        self.answers = []
        self.lock = threading.Lock()
        self.stop_at = time.monotonic() + seconds
        self.threads = [threading.Thread(target=self._client, args=(port, next_path, t0,
                                                                      deadline_s), daemon=True)
                        for _ in range(n)]
        for t in self.threads:
            t.start()

    def _client(self, port, next_path, t0, deadline_s):
        rng = random.Random()
        while time.monotonic() < self.stop_at:
            path = next_path(rng)
            status = 0
            try:
                with socket.create_connection((lab.LOOPBACK, port), timeout=deadline_s) as s:
                    s.settimeout(deadline_s)
                    s.sendall(('GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n'
                               % (path, lab.LOOPBACK)).encode())
                    head = s.recv(64)
                    if head.startswith(b'HTTP/1.1 '):
                        status = int(head[9:12])
            except (OSError, ValueError):
                status = 0
            with self.lock:
                self.answers.append((time.monotonic() - t0, status))
            if status == 0 or status >= 500:
                time.sleep(0.05)  # a client turned away backs off a little

    def join(self):
        for t in self.threads:
            t.join(30)

    def goodput(self, start, end):
        """2xx per second answered within [start, end)."""
        n = sum(1 for t, s in self.answers if start <= t < end and 200 <= s < 300)
        return n / max(end - start, 1e-9)

    def per_second(self, until, step=0.5):
        """Goodput over windows of `step` seconds, each at its window's middle."""
        return [(i * step + step / 2, self.goodput(i * step, (i + 1) * step))
                for i in range(int(until / step))]


def _wait(progress, label, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        progress.show('[%s] %.1f s left' % (label, end - time.monotonic()))
        time.sleep(0.25)


def counter(args, out, progress, p):
    rows = []
    # The single client first: the racy counter passes this test.
    with lab.Run(args.binary, config(args, 'bounded'), out, 'labs-counter-one') as run:
        for _ in range(20):
            lab_get(run.server, '/lab/counter?n=500&variant=racy')
        c = run.server.admin('/labs')['counter']['racy']
        rows.append(CounterRow(scenario='labs', mode='bounded', variant='racy', clients=1,
                               expected=c['expected'], lost=c['lost']))
    for mode in MODES:
        with lab.Run(args.binary, config(args, mode), out, 'labs-counter-%s' % mode) as run:
            for variant in ('racy', 'mutex', 'atomic', 'owner'):
                label = 'labs counter %s %s' % (mode, variant)
                run.mark('counter: ' + variant)
                w = run.wrk('/lab/counter?n=200&variant=' + variant, 16, p.hammer_s)
                _wait(progress, label, p.hammer_s)
                res = w.result()
                c = run.server.admin('/labs')['counter'][variant]
                rows.append(CounterRow(
                    scenario='labs', mode=mode, variant=variant, clients=16,
                    expected=c['expected'], lost=c['lost'],
                    per_s=c['expected'] / max(res.duration_us / 1e6, 1e-9)))
    for r in rows:
        r.lost_pct = 100.0 * r.lost / r.expected if r.expected else 0
    return rows


def lab_get(server, path, timeout=5):
    """The status of one request (0: no answer within `timeout`)."""
    try:
        with socket.create_connection((lab.LOOPBACK, server.main_port), timeout=timeout) as s:
            s.sendall(('GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
                       % path).encode())
            head = s.recv(64)
    except OSError:
        return 0
    return int(head[9:12]) if head.startswith(b'HTTP/1.1 ') else 0


def reserve(args, out, progress, p):
    rows = []
    for mode in MODES:
        with lab.Run(args.binary, config(args, mode), out, 'labs-reserve-%s' % mode) as run:
            for variant in ('racy', 'atomic', 'mutex'):
                run.server.admin('/labs/reset', method='POST')
                run.mark('reserve: ' + variant)
                w = run.wrk('/lab/reserve?variant=' + variant, 32, p.hammer_s)
                _wait(progress, 'labs reserve %s %s' % (mode, variant), p.hammer_s)
                w.result()
                r = run.server.admin('/labs')['reserve'][variant]
                stock = run.server.admin('/labs')['settings']['stock']
                rows.append(ReserveRow(scenario='labs', mode=mode, variant=variant, stock=stock,
                                       sold=r['sold'], oversold=r['oversold']))
    return rows


def leak(args, out, progress, p):
    rows, files = [], []
    for mode in MODES:
        name = 'labs-leak-%s' % mode
        # A queue timeout of 0.5 s: once the pool is lost, a request is refused within it.
        cfg = config(args, mode, bounded__queue_timeout_ms=500)
        with lab.Run(args.binary, cfg, out, name) as run:
            for variant in ('leaky', 'fixed'):
                time.sleep(0.3)
                run.mark('leak: ' + variant)
                before = run.sampler.sample() or run.sampler.latest()
                # blocking runs each helper inline, 100 ms at a time: it serves 10 of these a
                # second, and offered more, its backlog (not a leak) would fill the run.
                rate = min(p.leak_rate, 8) if mode == 'blocking' else p.leak_rate
                g = run.open_loop(args.openloop_binary, '/lab/leak?ms=100&variant=' + variant,
                                  rate, p.leak_s, 64)
                _wait(progress, 'labs leak %s %s' % (mode, variant), p.leak_s)
                res = g.result()
                time.sleep(0.5)  # a fixed helper ends once its 100 ms are done
                after = run.sampler.sample() or run.sampler.latest()
                health = lab_get(run.server, '/healthz', timeout=2)
                state = run.server.admin('/labs')['leak']
                rows.append(LeakRow(
                    scenario='labs', mode=mode, variant=variant,
                    asked=res.sent or res.requests,
                    answered_504=res.count(504), leaked=state[variant],
                    threads_grew=(after.get('os_threads') or 0) -
                    (before.get('os_threads') or 0),
                    tasks_after=after.get('tasks_running'),
                    rss_grew_mib=((after.get('rss_bytes') or 0) -
                                  (before.get('rss_bytes') or 0)) / 2**20,
                    healthz_after=health))
                if variant == 'leaky':
                    # The leaky phase's series; then the reset frees the helpers for the next.
                    path = os.path.join(out, name + '.csv')
                    report.write_csv(path, [dict(r, rss_mib=(r.get('rss_bytes') or 0) / 2**20)
                                            for r in run.sampler.rows])
                    files.append((mode, path))
                    run.server.admin('/labs/reset', method='POST')
    plots = plot_series(out, 'labs-leak', files, [
        ('leaked', 'lab_leaked', 'helpers alive after their request',
         'Leaked helpers (stampede_lab_leaked), leaky variant'),
        ('rss', 'rss_mib', 'RSS (MiB)', 'RSS of the server, leaky variant'),
        ('threads', 'os_threads', 'OS threads', 'OS threads of the server, leaky variant'),
    ])
    return rows, plots


def under_load(run, progress, label, path, p):
    """One client for the first third of the run (it can neither deadlock nor starve anyone),
    then eight: returns (clients, when the eight started)."""
    solo_s = p.lock_s / 3.0
    one = Clients(run.server.main_port, path, 1, p.lock_s, run.sampler.t0)
    _wait(progress, label + ' (1 client)', solo_s)
    crowd_at = time.monotonic() - run.sampler.t0
    crowd = Clients(run.server.main_port, path, p.clients - 1, p.lock_s - solo_s,
                    run.sampler.t0)
    _wait(progress, label + ' (%d clients)' % p.clients, p.lock_s - solo_s)
    one.join()
    crowd.join()
    one.answers += crowd.answers
    return one, crowd_at


def deadlock(args, out, progress, p):
    runs = [('bounded', 'unordered', False), ('bounded', 'ordered', False),
            ('bounded', 'unordered', True), ('coroutine', 'unordered', False)]
    rows, files, marks = [], [], []
    for mode, variant, breaks in runs:
        name = 'labs-transfer-%s-%s%s' % (mode, variant, '-break' if breaks else '')
        cfg = config(args, mode, labs__deadlock_detect_ms=500, labs__deadlock_break=breaks)
        with lab.Run(args.binary, cfg, out, name) as run:

            def path(rng):
                a, b = rng.sample('abcd', 2)
                return '/lab/transfer?from=%s&to=%s&ms=20&variant=%s' % (a, b, variant)

            c, crowd_at = under_load(run, progress, 'labs ' + name, path, p)
            end = crowd_at + p.lock_s * 2 / 3.0
            state = run.server.admin('/labs')['transfer']
            m = run.server.metrics()
            health = lab_get(run.server, '/healthz', timeout=2)
            first = detection_time(run.server.log_path)
        label = '%s %s%s' % (mode, variant, ' (break)' if breaks else '')
        series = os.path.join(out, name + '-goodput.csv')
        report.write_csv(series, [{'t': t, 'goodput': g} for t, g in c.per_second(end)])
        files.append((label, series))
        if first is not None:
            marks.append((label, first))
        last = state.get('last_detection') or {}
        rows.append(DeadlockRow(
            scenario='labs', mode=mode, variant=variant,
            break_cycles='yes' if breaks else 'no',
            goodput_before=c.goodput(crowd_at - p.lock_s / 3.0 + 0.2, crowd_at),
            goodput_after=c.goodput(end - 1, end),
            deadlocks=m.value('stampede_lab_deadlocks_total', variant=variant),
            stuck_at_end=m.value('stampede_lab_waits'),
            detected_after_ms=last.get('lasted_ms'),
            victims=sum(1 for _, s in c.answers if s == 500),
            healthz_after=health))
    plots = plot_goodput(out, 'labs-transfer', files,
                         'Goodput of /lab/transfer between random accounts: 1 client, then 8',
                         marks, crowd_at)
    return rows, plots


def detection_time(log_path):
    """Seconds since the server's start of its first detector line, or None."""
    start = None
    with open(log_path) as f:
        for line in f:
            stamp = line.split(' ', 1)[0]
            try:
                h, m, s = stamp.split('T')[1].split(':')
                t = int(h) * 3600 + int(m) * 60 + float(s)
            except (IndexError, ValueError):
                continue
            if start is None:
                start = t
            if 'lab detector' in line:
                return t - start
    return None


def nested(args, out, progress, p):
    runs = [('bounded', 'nested'), ('bounded', 'inline'), ('coroutine', 'nested')]
    rows, files, marks = [], [], []
    for mode, variant in runs:
        name = 'labs-nested-%s-%s' % (mode, variant)
        cfg = config(args, mode, labs__deadlock_detect_ms=500)
        with lab.Run(args.binary, cfg, out, name) as run:
            path = '/lab/nested?n=4&ms=20&variant=' + variant
            c, crowd_at = under_load(run, progress, 'labs ' + name, lambda rng: path, p)
            end = crowd_at + p.lock_s * 2 / 3.0
            state = run.server.admin('/labs')['nested']
            health = lab_get(run.server, '/healthz', timeout=2)
            first = detection_time(run.server.log_path)
        label = '%s %s' % (mode, variant)
        series = os.path.join(out, name + '-goodput.csv')
        report.write_csv(series, [{'t': t, 'goodput': g} for t, g in c.per_second(end)])
        files.append((label, series))
        if first is not None:
            marks.append((label, first))
        rows.append(NestedRow(
            scenario='labs', mode=mode, variant=variant,
            goodput_before=c.goodput(crowd_at - p.lock_s / 3.0 + 0.2, crowd_at),
            goodput_after=c.goodput(end - 1, end),
            starved=state['starved'], parents_stuck=state['parents_waiting'],
            detected_after_ms=state['last_detected_after_ms'], healthz_after=health))
    plots = plot_goodput(out, 'labs-nested', files,
                         'Goodput of /lab/nested (4 children of 20 ms): 1 client, then 8', marks,
                         crowd_at)
    return rows, plots


def cancellation(args, out, progress, p):
    rows = []
    # thread_per_request ignores a client leaving by default; bounded cancels by default.
    for mode in ('thread_per_request', 'bounded'):
        with lab.Run(args.binary, config(args, mode), out, 'labs-cancel-%s' % mode) as run:
            counts = lab.impatient_clients(run.server.main_port, '/work/io?ms=500', 20,
                                           1 if p.quick else 2, 0.1)
            time.sleep(0.8)
            m = run.server.metrics()
        rows.append(CancelRow(
            scenario='labs', mode=mode,
            variant='ignored' if mode == 'thread_per_request' else 'cancelled',
            abandoned=counts['abandoned'],
            wasted_s=m.value('stampede_wasted_work_seconds_total')))
    return rows


def global_lock(args, out, progress, p):
    """16 clients on /lab/lock?ms=20 per mode: goodput, the line on the lock, the wait."""
    rows = []
    for mode in MODES:
        with lab.Run(args.binary, config(args, mode, 'the global lock: a worker per client',
                                           bounded__workers=16),
                     out, 'labs-lock-%s' % mode) as run:
            for variant in ('global', 'narrow'):
                before = run.sampler.sample() or run.sampler.latest()
                run.mark('lock: ' + variant)
                c = Clients(run.server.main_port, lambda rng: '/lab/lock?ms=20&variant=' + variant,
                            16, p.global_s, run.sampler.t0)
                peak = {'waiting': 0, 'threads': 0}
                end = time.monotonic() + p.global_s
                while time.monotonic() < end:
                    progress.show('[labs lock %s %s] %.1f s left' % (mode, variant,
                                                                    end - time.monotonic()))
                    m = run.server.metrics()
                    peak['waiting'] = max(peak['waiting'],
                                          m.value('stampede_lab_lock_waiting', variant=variant))
                    peak['threads'] = max(peak['threads'], m.value('stampede_os_threads'))
                    time.sleep(0.2)
                c.join()
                state = run.server.admin('/labs')['lock'][variant]
                t = [a for a, _ in c.answers]
                span = (max(t) - min(t)) if len(t) > 1 else p.global_s
                ok = sum(1 for _, s in c.answers if 200 <= s < 300)
                rows.append(LockRow(
                    scenario='labs', mode=mode, variant=variant, goodput=ok / max(span, 1e-9),
                    waiting_peak=peak['waiting'],
                    threads_grew=peak['threads'] - (before.get('os_threads') or 0),
                    mean_wait_ms=state['mean_wait_ms']))
    return rows


def cpu_fanout(args, out, progress, p):
    """4 CPU-bound children of 50 ms, per mode and thread count: the best of 3 wall times."""
    runs = [('blocking', 1, {}), ('coroutine', 1, {'coroutine__threads': 1}),
            ('coroutine', 2, {'coroutine__threads': 2}), ('thread_per_request', None, {}),
            # The parent holds a worker while its children run: 2 leaves them one, 5 four.
            ('bounded', 2, {'bounded__workers': 2}), ('bounded', 5, {'bounded__workers': 5})]
    rows = []
    for mode, threads, extra in runs:
        with lab.Run(args.binary, config(args, mode, 'cpu_fanout: the thread count under test', **extra), out,
                     'labs-cpu-%s-%s' % (mode, threads or 'n')) as run:
            for variant in ('sequential', 'concurrent', 'parallel'):
                progress.show('[labs cpu_fanout %s %s]' % (mode, variant))
                run.mark('cpu_fanout: ' + variant)
                got = [run.server.get_json('/lab/cpu_fanout?n=4&ms=50&variant=' + variant)
                       for _ in range(3)]
                best = min(got, key=lambda g: g['wall_ms'])
                rows.append(CpuRow(
                    scenario='labs', mode=mode,
                    threads='a thread each' if threads is None else threads,
                    variant=variant, wall_ms=best['wall_ms'], work_ms=best['work_ms'],
                    best_ms=best['best_ms'], speedup=best['speedup']))
    return rows


def storm(args, out, progress, p):
    """64 clients putting into /lab/cache (write-back 20 ms) while one probe times /healthz."""
    rows = []
    # Not bounded mode: there the cleanups queue for the requests' own pool, whose bound
    # refuses them past its queue (stampede_lab_cleanups_refused_total).
    for mode in ('thread_per_request', 'coroutine'):
        with lab.Run(args.binary, config(args, mode), out, 'labs-cache-%s' % mode) as run:
            for variant in ('unbounded', 'bounded'):
                # The last variant's cleanups finish first: they would load this one.
                lab.wait_until(lambda: run.server.metrics().value('stampede_lab_cleanups') == 0,
                               30)
                run.server.admin('/labs/reset', method='POST')
                run.mark('cache: ' + variant)
                before = run.sampler.sample() or run.sampler.latest()
                c = Clients(run.server.main_port,
                            lambda rng: '/lab/cache?ms=50&variant=' + variant, 64, p.storm_s,
                            run.sampler.t0)
                probe = []
                peak = {'cleanups': 0, 'threads': 0, 'tasks': 0}
                end = time.monotonic() + p.storm_s
                while time.monotonic() < end:
                    progress.show('[labs cache %s %s] %.1f s left' % (mode, variant,
                                                                     end - time.monotonic()))
                    t = time.monotonic()
                    status = lab_get(run.server, '/healthz', timeout=2)
                    probe.append((time.monotonic() - t) if status == 200 else 2.0)  # gave up
                    m = run.server.metrics()
                    peak['cleanups'] = max(peak['cleanups'],
                                           m.value('stampede_lab_cleanups', variant=variant))
                    peak['threads'] = max(peak['threads'], m.value('stampede_os_threads'))
                    peak['tasks'] = max(peak['tasks'], m.value('stampede_tasks', state='running'))
                    time.sleep(0.1)
                c.join()
                after = run.sampler.sample() or run.sampler.latest()
                labs_now = run.server.admin('/labs')
                state = labs_now['cache'][variant]
                probe.sort()
                cpu = (after.get('cpu_seconds') or 0) - (before.get('cpu_seconds') or 0)
                rows.append(StormRow(
                    scenario='labs', mode=mode, variant=variant,
                    puts_per_s=sum(1 for _, s in c.answers if s == 200) / p.storm_s,
                    cleanups_peak=peak['cleanups'], threads_peak=peak['threads'],
                    tasks_peak=peak['tasks'],
                    cleanup_cpu_pct=100.0 * state['cleanup_cpu_seconds'] / p.storm_s,
                    cpu_pct=100.0 * cpu / p.storm_s,
                    healthz_p90_ms=1000 * probe[int(0.9 * (len(probe) - 1))] if probe else None,
                    refused=state['cleanups_refused'],
                    queue=labs_now['settings']['cleanup_queue'],
                    max_cleanups=labs_now['settings']['max_cleanups']))
    return rows


def plot_series(out, prefix, files, which):
    made = []
    for name, column, ylabel, title in which:
        png = '%s-%s.png' % (prefix, name)
        lines = ["set terminal pngcairo size 1000,420 font 'sans,10'", "set output '%s'" % png,
                 'set title "%s"' % title, 'set termoption noenhanced',
                 "set xlabel 'seconds since the server started'", "set ylabel '%s'" % ylabel,
                 "set datafile separator ','", 'set key outside right top', 'set grid',
                 'set yrange [0:*]']
        plots = ["'%s' using 't':'%s' with lines lw 2 lc rgb '%s' title '%s'"
                 % (os.path.basename(f), column, report.color(mode), mode)
                 for mode, f in files]
        lines.append('plot ' + ', '.join(plots))
        _gnuplot(out, prefix + '-' + name, lines)
        made.append(png)
    return made


def plot_goodput(out, prefix, files, title, marks, crowd_at):
    png = prefix + '-goodput.png'
    colors = ['#2ca02c', '#1f77b4', '#d62728', '#9467bd', '#ff7f0e']
    lines = ["set terminal pngcairo size 1000,420 font 'sans,10'", "set output '%s'" % png,
             'set title "%s\\ndotted: the detector reported (a lock cycle, a starved pool)"'
             % title, 'set termoption noenhanced',
             "set xlabel 'seconds since the server started'",
             "set ylabel '2xx per second (clients)'", "set datafile separator ','",
             'set key outside right top', 'set grid', 'set yrange [0:*]']
    col = {label: colors[i % len(colors)] for i, (label, _) in enumerate(files)}
    lines.append("set arrow 100 from %.2f, graph 0 to %.2f, graph 1 nohead dt 2 lw 1 "
                 "lc rgb 'black'" % (crowd_at, crowd_at))
    lines.append("set label 100 ' 8 clients' at %.2f, graph 0.95" % crowd_at)
    for n, (label, t) in enumerate(marks):
        lines.append("set arrow %d from %.2f, graph 0 to %.2f, graph 1 nohead dt 3 lw 2 "
                     "lc rgb '%s'" % (n + 1, t, t, col.get(label, 'black')))
    plots = ["'%s' using 't':'goodput' with linespoints lw 2 lc rgb '%s' title '%s'"
             % (os.path.basename(f), col[label], label) for label, f in files]
    lines.append('plot ' + ', '.join(plots))
    _gnuplot(out, prefix + '-goodput', lines)
    return [png]


def _gnuplot(out, name, lines):
    import subprocess
    script = os.path.join(out, name + '.gp')
    with open(script, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    subprocess.run(['gnuplot', os.path.basename(script)], cwd=out, check=True,
                   capture_output=True, timeout=60)


def _status(code):
    """A probe's answer: its status, or 'none' (no answer within 2 s)."""
    return 'none' if not code else str(int(code))


def _fmt_ms(v):
    return '-' if v is None else '%d ms' % v


def _find(rows, **kv):
    return next(r for r in rows if all(getattr(r, k, None) == v for k, v in kv.items()))


def counter_summary(rows, p):
    one = rows[0]
    racy = [r for r in rows[1:] if r.variant == 'racy']
    worst = max(racy, key=lambda r: r.lost_pct)
    fixed_lost = sum(r.lost for r in rows[1:] if r.variant != 'racy')
    blocking_racy = _find(rows[1:], mode='blocking', variant='racy')
    cost = {v: _find(rows[1:], mode='thread_per_request', variant=v).per_s
            for v in ('mutex', 'atomic', 'owner')}
    return LabSummary(
        scenario='labs', mode='', lab='lost update', unsafe='racy',
        symptom='%.0f %% of increments lost (%s)' % (worst.lost_pct, worst.mode),
        fixed='mutex, atomic, owner: %d lost' % fixed_lost, detector='ThreadSanitizer',
        verdict='Lost update: the racy counter lost %s of %s increments in %s under 16 '
                'clients, and %d of %d with one client: it passes the test and fails '
                'under load. mutex, atomic and owner (one task owns the counter and '
                'takes increments through a channel: no lock, nothing shared) lost %d; '
                'blocking, with no concurrency, lost %d. What each costs, in '
                'thread_per_request: mutex %s, atomic %s, owner %s increments/s.'
                % (report._count(worst.lost), report._count(worst.expected),
                   worst.mode, one.lost, one.expected, fixed_lost,
                   blocking_racy.lost, report._count(cost['mutex']),
                   report._count(cost['atomic']), report._count(cost['owner'])))


def reserve_summary(rows, p):
    over = [r for r in rows if r.variant == 'racy']
    worst_over = max(over, key=lambda r: r.oversold)
    mutex_over = sum(r.oversold for r in rows if r.variant == 'mutex')
    atomic_over = max((r for r in rows if r.variant == 'atomic'),
                      key=lambda r: r.oversold)
    return LabSummary(
        scenario='labs', mode='', lab='check-then-act', unsafe='racy',
        symptom='racy %d, atomic %d seats oversold of %d' % (
         worst_over.oversold, atomic_over.oversold, worst_over.stock),
        fixed='mutex: %d oversold' % mutex_over,
        detector='ThreadSanitizer (racy only: atomic is race-free and oversells)',
        verdict='Check-then-act: racy sold %d seats of a stock of %d in %s (every '
                'request that checked during another\'s round trip took the same seat); '
                'atomic, whose check and act are each atomic and which ThreadSanitizer '
                'finds nothing in, sold %d in %s: race-free is not correct. mutex, which '
                'checks and takes in one step, oversold %d.'
                % (worst_over.sold, worst_over.stock, worst_over.mode,
                   atomic_over.sold, atomic_over.mode, mutex_over))


def leak_summary(rows, p):
    b_leak = _find(rows, mode='bounded', variant='leaky')
    t_leak = _find(rows, mode='thread_per_request', variant='leaky')
    c_leak = _find(rows, mode='coroutine', variant='leaky')
    fixed_leaked = sum(r.leaked for r in rows if r.variant == 'fixed')
    return LabSummary(
        scenario='labs', mode='', lab='task leak', unsafe='leaky',
        symptom='bounded: %d helpers hold all 4 workers (/healthz %s); tpr: +%d threads; '
                'coroutine: %d tasks, +%.0f MiB' % (
                    b_leak.leaked, _status(b_leak.healthz_after),
                    t_leak.threads_grew, c_leak.leaked, c_leak.rss_grew_mib),
        fixed='fixed: %d leaked' % fixed_leaked, detector='GET /labs (goleak)',
        verdict='Task leak: every leaky helper outlives its request. bounded lost its 4 '
                'workers to the first %d helpers and then refused everything (/healthz '
                'got %s); thread_per_request grew %d OS threads; coroutine kept %d '
                'tasks alive with threads flat (+%d) and RSS +%.0f MiB. The fixed hand-over '
                'leaked %d.' % (b_leak.leaked, _status(b_leak.healthz_after),
                                t_leak.threads_grew, c_leak.leaked,
                                c_leak.threads_grew, c_leak.rss_grew_mib,
                                fixed_leaked))


def deadlock_summary(rows, p):
    dl = _find(rows, mode='bounded', variant='unordered', break_cycles='no')
    ordered = _find(rows, mode='bounded', variant='ordered')
    broken = _find(rows, mode='bounded', variant='unordered', break_cycles='yes')
    co_dl = _find(rows, mode='coroutine', variant='unordered')
    return LabSummary(
        scenario='labs', mode='', lab='lock-order deadlock', unsafe='unordered',
        symptom='bounded: %.0f/s with 1 client, %.0f/s with 8; cycle reported after %s'
                % (dl.goodput_before, dl.goodput_after,
                   _fmt_ms(dl.detected_after_ms)),
        fixed='ordered: %.0f/s with 8, %d cycles' % (ordered.goodput_after,
                                                   ordered.deadlocks),
        detector='wait-for graph',
        verdict='Lock-order deadlock: one client moving money between random accounts '
                'never deadlocks (%.0f/s). With 8, unordered locks formed %d cycle(s) in '
                'bounded; each held its workers for good, goodput fell to %.0f/s and '
                '/healthz got %s: the whole main port hung, while the admin port named '
                'the requests and locks (reported %s after the cycle formed). coroutine '
                'hung the transfers too (%d requests stuck) but kept serving /healthz (%s). '
                'ordered locks formed %d cycles and served %.0f/s. deadlock_break keeps '
                'the port alive at a price: %d victims failed, and every cycle stalls its '
                'accounts until it is found (%.0f/s).'
                % (dl.goodput_before, dl.deadlocks, dl.goodput_after,
                   _status(dl.healthz_after), _fmt_ms(dl.detected_after_ms),
                   co_dl.stuck_at_end, _status(co_dl.healthz_after),
                   ordered.deadlocks, ordered.goodput_after, broken.victims,
                   broken.goodput_after))


def nested_summary(rows, p):
    starved = _find(rows, mode='bounded', variant='nested')
    co_nested = _find(rows, mode='coroutine', variant='nested')
    inline = _find(rows, mode='bounded', variant='inline')
    return LabSummary(
        scenario='labs', mode='', lab='pool starvation', unsafe='nested',
        symptom='bounded: %.0f/s with 1 client, %.0f/s with 8; reported after %s'
                % (starved.goodput_before, starved.goodput_after,
                   _fmt_ms(starved.detected_after_ms)),
        fixed='inline: %.0f/s with 8' % inline.goodput_after,
        detector='starvation watchdog',
        verdict='Pool starvation: with one client, nested children find free workers '
                '(%.0f/s). With 8, every bounded worker held a parent waiting for children '
                'queued behind it: nothing moved (%.0f/s, %d parents stuck, /healthz %s), '
                'and the watchdog reported it %s after the last child started. inline '
                'children, run on the parent\'s own worker, served %.0f/s; in coroutine '
                'mode, where a child is one more task, nested served %.0f/s.'
                % (starved.goodput_before, starved.goodput_after,
                   starved.parents_stuck, _status(starved.healthz_after),
                   _fmt_ms(starved.detected_after_ms), inline.goodput_after,
                   co_nested.goodput_after))


def cancellation_summary(rows, p):
    ignored = _find(rows, variant='ignored')
    cancelled = _find(rows, variant='cancelled')
    return LabSummary(
        scenario='labs', mode='', lab='ignored cancellation', unsafe='thread_per_request',
        symptom='%.1f s of work for %d clients who had left' % (ignored.wasted_s,
                                                               ignored.abandoned),
        fixed='bounded (cancel_on_disconnect): %.1f s' % cancelled.wasted_s,
        detector='stampede_wasted_work_seconds_total',
        verdict='Ignored cancellation: thread_per_request without cancel_on_disconnect '
                'worked %.1f s for %d clients who had already left; bounded, which cancels, '
                'wasted %.1f s.' % (ignored.wasted_s, ignored.abandoned,
                                   cancelled.wasted_s))


def lock_summary(rows, p):
    t_g = _find(rows, mode='thread_per_request', variant='global')
    t_n = _find(rows, mode='thread_per_request', variant='narrow')
    c_g = _find(rows, mode='coroutine', variant='global')
    c_n = _find(rows, mode='coroutine', variant='narrow')
    return LabSummary(
        scenario='labs', mode='', lab='global lock', unsafe='global',
        symptom='tpr: %.0f/s, %d waiting, %.0f ms in line' % (
         t_g.goodput, t_g.waiting_peak, t_g.mean_wait_ms),
        fixed='narrow: %.0f/s' % t_n.goodput, detector='stampede_lab_lock_waiting',
        verdict='Global lock: with one server-wide lock held across each 20 ms request, '
                'thread_per_request served %.0f/s (1,000 / 20 ms = 50/s: one at a time) '
                'with %d requests in line and %.0f ms in line on average, its threads '
                'parked on the lock (+%d); coroutine served %.0f/s, its tasks in line '
                'holding no thread. Holding the lock for the shared update only '
                '(narrow) served %.0f/s and %.0f/s. A lock coordinates; it adds no '
                'concurrency.' % (t_g.goodput, t_g.waiting_peak, t_g.mean_wait_ms,
                                  t_g.threads_grew, c_g.goodput, t_n.goodput,
                                  c_n.goodput))


def cpu_summary(rows, p):
    co1 = _find(rows, mode='coroutine', threads=1, variant='concurrent')
    co1p = _find(rows, mode='coroutine', threads=1, variant='parallel')
    tp = _find(rows, mode='thread_per_request', variant='parallel')
    bl = _find(rows, mode='blocking', variant='parallel')
    return LabSummary(
        scenario='labs', mode='', lab='concurrency is not parallelism', unsafe='concurrent',
        symptom='concurrent: %.0f ms for %d ms of work' % (co1.wall_ms, co1.work_ms),
        fixed='parallel, tpr: %.0f ms (%.1f×)' % (tp.wall_ms, tp.speedup),
        detector='wall time against K·N and K·N/cores',
        verdict='Concurrency is not parallelism: 4 CPU-bound children of 50 ms, all under '
                'way at once on one thread, took %.0f ms, the %d ms of their work one '
                'after another; handed to coroutine mode on one thread they took %.0f '
                'ms, and to blocking mode, which runs children inline, %.0f ms. Given a '
                'thread each (thread_per_request) they took %.0f ms: %.1f× faster, '
                'against the %.0f ms that the machine\'s cores allow at best.'
                % (co1.wall_ms, co1.work_ms, co1p.wall_ms, bl.wall_ms,
                   tp.wall_ms, tp.speedup, tp.best_ms))


def _ceiling(row):
    """A peak of cleanups, and whether it is the lab's ceiling (labs.max_cleanups)."""
    n = report._count(row.cleanups_peak)
    if row.cleanups_peak >= row.max_cleanups:
        n += ' (the lab\'s ceiling, labs.max_cleanups: past it, 503)'
    return n


def storm_summary(rows, p):
    t_u = _find(rows, mode='thread_per_request', variant='unbounded')
    t_b = _find(rows, mode='thread_per_request', variant='bounded')
    c_u = _find(rows, mode='coroutine', variant='unbounded')
    c_b = _find(rows, mode='coroutine', variant='bounded')
    return LabSummary(
        scenario='labs', mode='', lab='cleanup storm', unsafe='unbounded',
        symptom='tpr: %d cleanups, %d threads, /healthz p90 %.1f ms' % (
         t_u.cleanups_peak, t_u.threads_peak, t_u.healthz_p90_ms),
        fixed='bounded: %d cleanups, /healthz p90 %.1f ms' % (
         t_b.cleanups_peak, t_b.healthz_p90_ms),
        detector='stampede_lab_cleanups',
        verdict='Cleanup storm: 64 clients putting into a full cache, one cleanup per '
                'eviction. Fire-and-forget, thread_per_request had %d cleanups under way '
                '(%d threads) for 64 clients, they took %.0f %% of a core, and /healthz, '
                'which does nothing, took %.1f ms at p90; coroutine had %s cleanup tasks '
                'and /healthz took %.1f ms. One drainer with a queue of %d: at most %d '
                'cleanups, /healthz %.1f ms (thread_per_request) and %.1f ms (coroutine); '
                'the puts waited for room instead (%.0f/s against %.0f/s).'
                % (t_u.cleanups_peak, t_u.threads_peak, t_u.cleanup_cpu_pct,
                   t_u.healthz_p90_ms, _ceiling(c_u), c_u.healthz_p90_ms,
                   t_b.queue, max(t_b.cleanups_peak, c_b.cleanups_peak),
                   t_b.healthz_p90_ms, c_b.healthz_p90_ms, t_b.puts_per_s,
                   t_u.puts_per_s))


# name: (run, summary, section title). `loadtest/run labs --lab NAME` runs one.
LABS = {
    'counter': (counter, counter_summary, lambda p: 'lost update: /lab/counter'),
    'reserve': (reserve, reserve_summary, lambda p: 'check-then-act: /lab/reserve'),
    'leak': (leak, leak_summary, lambda p: 'task leak: /lab/leak?ms=100 at %d/s (blocking 8/s) '
             'for %d s, labs.wait_ms 50' % (p.leak_rate, p.leak_s)),
    'transfer': (deadlock, deadlock_summary, lambda p: 'lock-order deadlock: /lab/transfer'),
    'nested': (nested, nested_summary, lambda p: 'pool starvation: /lab/nested'),
    'cancel': (cancellation, cancellation_summary,
               lambda p: 'ignored cancellation: /work/io?ms=500, clients leave after 0.1 s'),
    'lock': (global_lock, lock_summary,
             lambda p: 'global lock: /lab/lock?ms=20, 16 clients for %d s' % p.global_s),
    'cpu_fanout': (cpu_fanout, cpu_summary, lambda p: 'concurrency is not parallelism: '
                   '/lab/cpu_fanout?n=4&ms=50, the best of 3'),
    'cache': (storm, storm_summary, lambda p: 'cleanup storm: /lab/cache?ms=50, 64 clients for '
              '%d s, a /healthz probe' % p.storm_s),
}


def labs(args, out, progress):
    """Every lab (or the one --lab names), then the labs' table and a verdict per lab. Rows
    carry their section."""
    p = Params(args.quick)
    started = time.monotonic()
    names = [args.lab] if getattr(args, 'lab', None) else list(LABS)
    ran = []
    for name in names:
        run, summary, section = LABS[name]
        result = run(args, out, progress, p)
        rows, plots = result if isinstance(result, tuple) else (result, None)
        ran.append((summary(rows, p), section(p), rows, plots))
    progress.done()

    out_rows = [s for s, _, _, _ in ran]
    for _, section, rows, plots in ran:
        for r in rows:
            r.path = section
            r.plots = plots or []
        out_rows += rows
    out_rows[0].wall_s = time.monotonic() - started
    return [r.as_dict() for r in out_rows]


COLUMNS = {
    'the labs': [('lab', 'lab', report.text), ('unsafe', 'unsafe', report.text),
                 ('symptom', 'symptom', report.text), ('fixed', 'fixed', report.text),
                 ('detector', 'detector', report.text)],
    'lost update': [('mode', 'mode', report.text), ('variant', 'variant', report.text),
                    ('clients', 'clients', report.n0), ('increments', 'expected', report.n0),
                    ('lost', 'lost', report.n0), ('lost %', 'lost_pct', report.n1),
                    ('increments/s', 'per_s', report.n0)],
    'check-then-act': [('mode', 'mode', report.text), ('variant', 'variant', report.text),
                       ('stock', 'stock', report.n0), ('sold', 'sold', report.n0),
                       ('oversold', 'oversold', report.n0)],
    'task leak': [('mode', 'mode', report.text), ('variant', 'variant', report.text),
                  ('sent', 'asked', report.n0), ('504', 'answered_504', report.n0),
                  ('leaked', 'leaked', report.n0), ('threads +', 'threads_grew', report.n0),
                  ('tasks', 'tasks_after', report.n0), ('RSS + MiB', 'rss_grew_mib', report.n1),
                  ('/healthz after', 'healthz_after', _status)],
    'lock-order deadlock': [('mode', 'mode', report.text), ('variant', 'variant', report.text),
                            ('break', 'break_cycles', report.text),
                            ('2xx/s 1 client', 'goodput_before', report.n0),
                            ('2xx/s 8 clients', 'goodput_after', report.n0),
                            ('cycles', 'deadlocks', report.n0),
                            ('detected after ms', 'detected_after_ms', report.n0),
                            ('victims', 'victims', report.n0),
                            ('stuck at end', 'stuck_at_end', report.n0),
                            ('/healthz after', 'healthz_after', _status)],
    'pool starvation': [('mode', 'mode', report.text), ('variant', 'variant', report.text),
                        ('2xx/s 1 client', 'goodput_before', report.n0),
                        ('2xx/s 8 clients', 'goodput_after', report.n0),
                        ('starved', 'starved', report.n0),
                        ('parents stuck', 'parents_stuck', report.n0),
                        ('detected after ms', 'detected_after_ms', report.n0),
                        ('/healthz after', 'healthz_after', _status)],
    'ignored cancellation': [('mode', 'mode', report.text), ('variant', 'variant', report.text),
                             ('clients left', 'abandoned', report.n0),
                             ('wasted s', 'wasted_s', report.n1)],
    'global lock': [('mode', 'mode', report.text), ('variant', 'variant', report.text),
                    ('2xx/s', 'goodput', report.n0), ('in line at most', 'waiting_peak', report.n0),
                    ('mean wait ms', 'mean_wait_ms', report.n1),
                    ('threads +', 'threads_grew', report.n0)],
    'concurrency is not parallelism': [
        ('mode', 'mode', report.text), ('threads', 'threads', report.text),
        ('variant', 'variant', report.text), ('wall ms', 'wall_ms', report.n1),
        ('K·N ms', 'work_ms', report.n0), ('K·N/cores ms', 'best_ms', report.n1),
        ('speed-up', 'speedup', report.n1)],
    'cleanup storm': [('mode', 'mode', report.text), ('variant', 'variant', report.text),
                      ('puts/s', 'puts_per_s', report.n0),
                      ('cleanups at most', 'cleanups_peak', report.n0),
                      ('threads at most', 'threads_peak', report.n0),
                      ('tasks at most', 'tasks_peak', report.n0),
                      ('cleanup CPU %', 'cleanup_cpu_pct', report.n0),
                      ('CPU %', 'cpu_pct', report.n0),
                      ('/healthz p90 ms', 'healthz_p90_ms', report.n1),
                      ('refused', 'refused', report.n0)],
}


ROW_TYPES = {'the labs': LabSummary, 'lost update': CounterRow, 'check-then-act': ReserveRow,
             'task leak': LeakRow, 'lock-order deadlock': DeadlockRow,
             'pool starvation': NestedRow, 'ignored cancellation': CancelRow,
             'global lock': LockRow, 'concurrency is not parallelism': CpuRow,
             'cleanup storm': StormRow}
for _name, _columns in COLUMNS.items():
    records.check_columns(ROW_TYPES[_name], _columns)


def columns_for(section):
    return COLUMNS[section.split(':')[0]]
