"""stampede's overhead benchmark: how far each mode is from a bare Beast server.

  loadtest/run bench [--rounds 3] [--seconds 5] [--connections 64] [--threads 1,2]
                     [--waiting 10000] [--healthz-only] [--quick]
  (scripts/bench builds first, unless --no-build, and runs it.)

1. /healthz under wrk (closed loop, N connections) against bench/reference_server.cpp (the
   strongest minimal Beast server: an io_context per thread, SO_REUSEPORT, the same answer)
   and against stampede in each mode, at 1 and 2 threads (stampede's main.io_threads against
   the reference's threads), interleaved round by round so that the machine's drift hits all
   alike; prints median req/s, p99, server CPU per request, and the ratio to the reference of
   the same thread count. At 1 thread each server is held to core 0 (all its threads: a mode's
   workers share the core with its I/O thread) and wrk runs on core 1 with one thread, so the
   load generator never preempts the server and every server has the same CPU; at 2 threads
   nothing is pinned and wrk -t2 shares the cores.
2. The 503 path: a bounded pool with every worker busy and the queue full, hammered with
   requests that can only be rejected: 503s per second, against the reference's req/s.
3. Memory per waiting request: RSS growth of a bounded server while N requests wait in its
   queue (each on its own connection), divided by N; the same for N coroutine tasks in flight.
4. A closed-loop CPU spike on bounded (4 workers, /work/cpu?ms=5): p90 of the admitted (2xx)
   answers with 800 clients that ask again at once, against p90 with 4 clients.
5. The live page's data endpoint: its p99 latency while a spike runs, and the server CPU it
   costs polled once a second, as one open page does.
Everything runs on 127.0.0.1, bounded in connections and time; servers are stopped at the end.
Standard library only (/usr/bin/python3)."""

import dataclasses
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

from . import lab, records, report, wrkparse

MODES = ["blocking", "bounded", "thread_per_request", "coroutine"]

# Why a bench server's config differs from the model: the report lists it.
WHY = 'bench: the mode, its I/O threads, and a pool sized for the figure measured'


@dataclasses.dataclass
class HealthzRow(records.Row):
    """One server's /healthz against the reference at the same thread count: medians of the
    rounds. `mode` is the server's name (the reference, or stampede's mode)."""
    path: str
    threads: int
    rps: float
    p99_us: object
    cpu_us: float           # server CPU per request
    ratio: float            # req/s against the reference's
    context: str = ''


@dataclasses.dataclass
class FigureRow(records.Row):
    """One of the other figures, in words: the 503 path, memory, the CPU spike, the page."""
    path: str
    figure: str
    value: str


class Reference:
    """bench/reference_server.cpp on an ephemeral loopback port."""

    def __init__(self, binary, threads):
        # A session of its own, as every stampede server runs (lab.Server): with the kernel's
        # autogroups, the CPU is then shared between the server and wrk alike for both.
        self.proc = subprocess.Popen([binary, '0', str(threads)], stdout=subprocess.PIPE,
                                     text=True, start_new_session=True)
        line = self.proc.stdout.readline()
        self.url = 'http://127.0.0.1:%d' % int(line.split()[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def config(args, mode, overrides):
    """A bench server's config: the model, with the mode and `overrides` ({dotted key: value})."""
    return args.model.config_text(dict({'mode': mode, 'reload.watch': False}, **overrides), WHY)


def run_wrk(url, path, connections, seconds, on_cpu=None):
    """Plain wrk (no Lua: a script's response() hook makes wrk itself the bottleneck here),
    two threads, or one thread held to core `on_cpu`. Returns (requests/s, p99 µs, share of
    answers that were not 2xx/3xx)."""
    if not url.startswith('http://127.0.0.1:'):
        raise ValueError('loopback only: ' + url)
    connections = min(connections, lab.MAX_CONNECTIONS)
    cmd = ['wrk', '-t2', '-c%d' % connections, '-d%ds' % seconds, '--latency', url + path]
    if on_cpu is not None:
        cmd = ['taskset', '-c', str(on_cpu)] + cmd
        cmd[cmd.index('-t2')] = '-t1'
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(re.search(r'^Requests/sec:\s+([\d.]+)', out, re.M).group(1))
    m = re.search(r'^\s+99%\s+([\d.]+)(us|ms|s)\b', out, re.M)
    p99 = float(m.group(1)) * {'us': 1, 'ms': 1e3, 's': 1e6}[m.group(2)] if m else None
    total = int(re.search(r'^\s+(\d+) requests in', out, re.M).group(1))
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    return rps, p99, (int(non2xx.group(1)) if non2xx else 0) / max(1, total)


def cpu_seconds(pid):
    """User + system CPU time of process `pid` (all its threads) so far."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def pinned(t):
    """Whether the t-thread comparison holds the server to core 0 and wrk to core 1."""
    return t == 1 and (os.cpu_count() or 1) >= 2


def healthz_rounds(args, out):
    """{threads: {server: (median req/s, median p99, median server CPU µs per request)}},
    every server of every thread count measured once per round, round after round."""
    names = ['reference'] + args.bench_modes
    results = {t: {name: [] for name in names} for t in args.threads}
    for rnd in range(args.rounds):
        for t in args.threads:
            for name in names:
                if name == 'reference':
                    server = Reference(args.reference, t)
                else:
                    # The pool holds every connection (4 workers, a queue of 64): this measures
                    # the hot path of answered requests, not the model's 503s.
                    server = lab.Server(args.binary, config(args, name, {
                        'main.io_threads': t, 'bounded.workers': 4,
                        'bounded.queue_capacity': 64, 'bounded.queue_timeout_ms': 1000}),
                        out, 'bench-%s-%dt-%d' % (name, t, rnd))
                try:
                    if pinned(t):  # every thread, and those it starts later
                        subprocess.run(['taskset', '-a', '-p', '-c', '0', str(server.proc.pid)],
                                       check=True, capture_output=True)
                    before = cpu_seconds(server.proc.pid)
                    rps, p99, _ = run_wrk(server.url, '/healthz', args.connections, args.seconds,
                                          on_cpu=1 if pinned(t) else None)
                    us = (cpu_seconds(server.proc.pid) - before) / (rps * args.seconds) * 1e6
                finally:
                    server.stop()
                results[t][name].append((rps, p99, us))
                print('  round %d, %d thread(s): %-20s %9s req/s  p99 %s  %.1f µs CPU/request' % (
                    rnd + 1, t, name, report.n0(rps), report.ms(p99), us), file=sys.stderr)
    return {t: {n: (statistics.median(r[0] for r in v),
                    statistics.median(r[1] for r in v if r[1]),
                    statistics.median(r[2] for r in v)) for n, v in by.items()}
            for t, by in results.items()}


def hold(port, n, path):
    """n connections that each send `path` and wait."""
    sockets = []
    request = ('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % path).encode()
    for _ in range(n):
        s = socket.create_connection(('127.0.0.1', port), timeout=10)
        s.sendall(request)
        sockets.append(s)
    return sockets


def wait_for(fn, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.1)
    return False


def rejection_rate(args, out):
    server = lab.Server(args.binary, config(args, 'bounded', {
        'bounded.workers': 2, 'bounded.queue_capacity': 2, 'bounded.queue_timeout_ms': 600000,
        'downstream.capacity': 0}), out, 'bench-503')
    held = []
    try:
        held = hold(server.main_port, 4, '/work/io?ms=60000')
        if not wait_for(lambda: server.metrics().value('stampede_queue_depth') == 2):
            raise RuntimeError('the pool did not fill')
        rps, p99, rejected = run_wrk(server.url, '/work/io?ms=1', args.connections, args.seconds)
        return rps, p99, rejected
    finally:
        for s in held:
            s.close()
        server.stop()


def memory_per_waiting(args, out, mode='bounded'):
    n = args.waiting
    server = lab.Server(args.binary, config(args, mode, {
        'bounded.workers': 1, 'bounded.queue_capacity': n + 10,
        'bounded.queue_timeout_ms': 600000, 'downstream.capacity': 0, 'work.request_kb': 0,
        'http.max_connections': n + 100}), out, 'bench-memory-' + mode)
    held = []
    try:
        hold(server.main_port, 1, '/healthz')  # warm the session path once
        time.sleep(0.3)
        before = server.metrics().value('process_resident_memory_bytes')
        held = hold(server.main_port, n, '/work/io?ms=60000')
        if mode == 'bounded':
            def arrived():
                return server.metrics().value('stampede_queue_depth') >= n - 1
        else:
            def arrived():
                return server.metrics().value('stampede_tasks', mode=mode,
                                              state='running') >= n - 1
        if not wait_for(arrived):
            raise RuntimeError('not all requests arrived')
        after = server.metrics().value('process_resident_memory_bytes')
        return (after - before) / n
    finally:
        for s in held:
            s.close()
        server.stop()


def closed_clients(args, server, path, clients, seconds):
    """stampede-openloop --closed: `clients` that each ask again at once (as wrk's do)."""
    out = subprocess.run([args.openloop, '--target', '127.0.0.1:%d' % server.main_port,
                          '--path', path, '--closed', str(clients), '--duration', str(seconds),
                          '--timeout', '60000'], capture_output=True, text=True,
                         timeout=seconds + 90).stdout
    return wrkparse.parse(out)


def cpu_spike(args, out):
    # Sized as the lab sizes a pool: a short queue (a quarter of the workers) and a short
    # queue timeout. (With the default queue of 64, an admitted request waits behind 64 others
    # of 5 ms of CPU on 2 cores whatever the server does: >= 160 ms by arithmetic alone.)
    server = lab.Server(args.binary, config(args, 'bounded', {
        'bounded.workers': 4, 'bounded.queue_capacity': 1, 'bounded.queue_timeout_ms': 100,
        'work.request_kb': 0, 'http.max_connections': 2000}), out, 'bench-cpu-spike')
    try:
        # wrk with loadtest/wrk/stampede.lua: latency of the 2xx answers only.
        calm = lab.Wrk(server.url, '/work/cpu?ms=5', 4, args.seconds, timeout_s=30).result()
        spike = lab.Wrk(server.url, '/work/cpu?ms=5', 800, args.seconds, timeout_s=30).result()
        return calm, spike
    finally:
        server.stop()


def live_overhead(args, out):
    """p99 of /live/data under a CPU spike on bounded, and the CPU one open page costs."""
    server = lab.Server(args.binary, config(args, 'bounded', {
        'bounded.workers': 4, 'work.request_kb': 0, 'http.max_connections': 2000}),
        out, 'bench-live')
    try:
        def poll(count, pause):
            # One keep-alive connection, as the page's fetch() uses.
            times = []
            after = 0
            c = http.client.HTTPConnection('127.0.0.1', server.admin_port, timeout=10)
            for _ in range(count):
                start = time.monotonic()
                c.request('GET', '/live/data?after=%d' % after)
                body = c.getresponse().read()
                times.append(time.monotonic() - start)
                samples = json.loads(body)['samples']
                if samples:
                    after = samples[-1]['seq']
                time.sleep(pause)
            c.close()
            return sorted(times)
        # Idle server, polled as an open page does (once a second) vs not polled at all.
        def cpu_over(seconds, polled):
            before = server.metrics().value('process_cpu_seconds_total')
            if polled:
                poll(seconds, 1.0)
            else:
                time.sleep(seconds)
            return (server.metrics().value('process_cpu_seconds_total') - before) / seconds
        idle = cpu_over(args.seconds * 2, False)
        polled = cpu_over(args.seconds * 2, True)
        result = {}
        spike = threading.Thread(target=lambda: result.setdefault('spike', closed_clients(
            args, server, '/work/cpu?ms=5', 800, args.seconds + 2)))
        spike.start()
        time.sleep(1)
        times = poll(args.seconds * 20, 0.05)
        spike.join()
        p99 = times[max(0, int(len(times) * 0.99) - 1)]
        return p99, idle, polled, len(times)
    finally:
        server.stop()


def bench(args, out, progress):
    """The scenario: the /healthz rounds, then (unless --healthz-only) the other figures."""
    quick = args.quick
    args.rounds, args.seconds = (1, 2) if quick else (args.rounds, args.seconds)
    args.waiting = min(args.waiting, 1000) if quick else args.waiting
    args.reference = os.path.join(os.path.dirname(args.binary), 'stampede-bench-reference')
    args.openloop = args.openloop_binary
    # --modes narrows the comparison (its default, every mode, keeps it whole).
    args.bench_modes = [m for m in MODES if m in args.modes] or MODES
    if not os.access(args.reference, os.X_OK):
        raise SystemExit('no stampede-bench-reference beside the binary (build: scripts/setup)')
    progress.line('bench — %s; wrk -c%d -d%ds, %d interleaved round(s), medians' % (
        report.machine(), args.connections, args.seconds, args.rounds))
    medians = healthz_rounds(args, out)
    rows = []
    for t in args.threads:
        ref = medians[t]['reference'][0]
        for name in ['reference'] + args.bench_modes:
            rps, p99, us = medians[t][name]
            rows.append(HealthzRow(scenario='bench', mode=name,
                                   path='/healthz at %d thread%s' % (t, 's' if t > 1 else ''),
                                   threads=t, rps=rps, p99_us=p99, cpu_us=us, ratio=rps / ref))
    rows[0].context = (
        'Against the reference at the same thread count (bench/reference_server.cpp: an '
        'io_context per thread, SO_REUSEPORT), interleaved round by round; 1 thread: each '
        'server on core 0, wrk -t1 on core 1; 2 threads: unpinned, wrk -t2.')
    progress.done()
    if args.healthz_only:
        return [r.as_dict() for r in rows]
    figures = []

    def figure(name, value):
        figures.append(FigureRow(scenario='bench', mode='bounded' if 'coroutine' not in name
                                 else 'coroutine', path='other figures', figure=name,
                                 value=value))

    ref = medians[args.threads[0]]['reference'][0]
    rate, p99, share = rejection_rate(args, out)
    figure('saturated bounded pool (workers busy, queue full)',
           '%s 503/s (%.0f %% of answers), %.2fx the %d-thread reference; 503 p99 %s' % (
               report.n0(rate), 100 * share, rate / ref, args.threads[0], report.ms(p99)))
    per = memory_per_waiting(args, out)
    figure('memory per request waiting in bounded\'s queue',
           '%.1f KiB (%d waiting, connection included)' % (per / 1024, args.waiting))
    per = memory_per_waiting(args, out, 'coroutine')
    figure('memory per coroutine task in flight',
           '%.1f KiB (%d in flight, connection included)' % (per / 1024, args.waiting))
    calm, spike = cpu_spike(args, out)
    c90, s90 = calm.ok_percentile(0.90), spike.ok_percentile(0.90)
    figure('CPU spike, bounded (4 workers, queue 1, /work/cpu?ms=5, 800 wrk connections that '
           'ask again at once)',
           'admitted p90 %s with 4 connections, %s with 800 (%.1fx); p99 %s -> %s; %s 503s' % (
               report.ms(c90), report.ms(s90), s90 / c90 if c90 and s90 else float('nan'),
               report.ms(calm.ok_percentile(0.99)), report.ms(spike.ok_percentile(0.99)),
               report.n0(spike.count(503))))
    p99, idle, polled, n = live_overhead(args, out)
    figure('live page during an 800-client CPU spike',
           '/live/data p99 %.2f ms over %d polls; server CPU idle %.2f %% of a core, polled '
           'once a second %.2f %% (the sampler runs either way)' % (
               1000 * p99, n, 100 * idle, 100 * polled))
    return [r.as_dict() for r in rows + figures]


HEALTHZ_COLUMNS = records.check_columns(HealthzRow, [
    ('server', 'mode', report.text),
    ('req/s', 'rps', report.n0),
    ('p99', 'p99_us', report.ms),
    ('CPU/request µs', 'cpu_us', report.n1),
    ('ratio', 'ratio', lambda v: '%.2fx' % v),
])

FIGURE_COLUMNS = records.check_columns(FigureRow, [
    ('figure', 'figure', report.text),
    ('value', 'value', report.text),
])


def columns_for(path):
    return FIGURE_COLUMNS if path == 'other figures' else HEALTHZ_COLUMNS
