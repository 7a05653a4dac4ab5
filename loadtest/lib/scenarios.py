"""The load-test scenarios: spike (the runaway), baseline, disconnect, fanout.

Each runs every requested mode on a fresh server (same config but the mode), samples its
metrics, and returns table rows; the spike also writes time series and plots."""

import os
import time

import lab
import report
import wrkparse

MODES = ['blocking', 'thread_per_request', 'bounded']

ENDPOINTS = {
    'io': '/work/io?ms=100',
    'cpu': '/work/cpu?ms=5',
}


# Bounded pool sizes per workload, as one would size them: CPU-bound work gets a worker per
# core; I/O-bound work gets enough workers for its concurrency (Little's law: 16 workers at
# 100 ms each serve 160 requests/s). The queue holds one more round of work.
POOL = {'io': 16, 'cpu': os.cpu_count() or 2}


def server_config(mode, workload='io'):
    """The lab's server: the demo's settings, the mode varying."""
    workers = POOL[workload]
    return '\n'.join([
        'mode: %s' % mode,
        'main:',
        '  io_threads: 1',
        '  backlog: 8192',
        'bounded:',
        '  workers: %d' % workers,
        '  queue_capacity: %d' % workers,
        '  queue_timeout_ms: 250',
        '  cancel_on_disconnect: true',
        'thread_per_request:',
        '  max_threads: 4000',
        'http:',
        '  max_connections: 10000',
        'shutdown:',
        '  drain_timeout_ms: 2000',
        'reload:',
        '  watch: false',
        '',
    ])


# --open-loop rates (requests/s): (steady, burst at the full 2,000-connection budget). The burst
# is scaled with the connection budget, so --quick offers proportionally less.
OPEN_LOOP = {
    'io': (8, 2000),  # capacity: blocking 10/s, bounded 160/s
    'cpu': (100, 1000),  # capacity: about 200/s per core
}


class Params:
    """Durations (s) and connection counts; --quick shrinks them to a smoke run."""

    def __init__(self, quick):
        self.quick = quick
        self.pre_s = 2 if quick else 5
        self.spike_s = 3 if quick else 10
        self.recovery_s = 2 if quick else 8
        self.steady_c = 4 if quick else 8
        self.burst_c = 300 if quick else 2000
        self.baseline_s = 2 if quick else 8
        self.disconnect_s = 2 if quick else 8
        self.impatient_clients = 20 if quick else 50
        self.fanout_s = 2 if quick else 4

    def steady_for(self, endpoint):
        """Steady connections below capacity: CPU work gets one per core."""
        return (os.cpu_count() or 2) if endpoint == 'cpu' else self.steady_c


def _wait(procs, progress, label, started, total, sampler):
    while any(p.proc.poll() is None for p in procs):
        row = sampler.latest()
        progress.show('[%s] %5.1f/%.0fs  threads=%s tasks=%s rss=%s' % (
            label, time.monotonic() - started, total, report.n0(row.get('os_threads')),
            report.n0(row.get('tasks_running')), report.mib(row.get('rss_bytes'))))
        time.sleep(0.25)


def _delta(sampler, name):
    rows = sampler.rows
    return rows[-1][name] - rows[0][name] if rows else 0


def spike(args, out, progress):
    p = Params(args.quick)
    results = []
    for endpoint in args.endpoints:
        path = ENDPOINTS[endpoint]
        files = []
        steady_c = p.steady_for(endpoint)
        for mode in args.modes:
            label = 'spike %s %s' % (endpoint, mode)
            progress.show('[%s] starting' % label, force=True)
            with lab.Run(args.binary, server_config(mode, endpoint), out,
                         'spike-%s-%s' % (endpoint, mode)) as run:
                sampler = run.sampler
                total = p.pre_s + p.spike_s + p.recovery_s
                started = time.monotonic()
                # Three phases: steady load, steady plus a burst, steady again (recovery).
                def load(steady_phase, seconds):
                    if args.open_loop:
                        rate, conns = (OPEN_LOOP[endpoint][0], steady_c * 8) if steady_phase \
                            else (OPEN_LOOP[endpoint][1] * p.burst_c / 2000, p.burst_c)
                        return run.open_loop(args.openloop_binary, path, rate, seconds, conns)
                    conns = steady_c if steady_phase else p.burst_c
                    return run.wrk(path, conns, seconds, polite=args.polite)

                pre = load(True, p.pre_s)
                _wait([pre], progress, label, started, total, sampler)
                pre_result = pre.result()
                spike_start = time.monotonic() - sampler.t0
                steady = load(True, p.spike_s)
                burst = load(False, p.spike_s)
                _wait([steady, burst], progress, label, started, total, sampler)
                steady_result, burst_result = steady.result(), burst.result()
                spike_end = time.monotonic() - sampler.t0
                post = load(True, p.recovery_s)
                _wait([post], progress, label, started, total, sampler)
                post_result = post.result()
            rows = report.derive(sampler.rows, sampler.buckets)
            csv_path = os.path.join(out, 'series-%s-%s.csv' % (endpoint, mode))
            report.write_csv(csv_path, rows)
            files.append((mode, csv_path))
            during = wrkparse.merge([steady_result, burst_result])
            seconds = p.spike_s
            row = {
                'scenario': 'spike', 'endpoint': endpoint, 'path': path, 'mode': mode,
                'rps': during.requests / seconds,
                'goodput': during.count_class(2) / seconds,
                'ok_p50_us': during.ok_percentile(0.50),
                'ok_p99_us': during.ok_percentile(0.99),
                'ok_max_us': during.ok_max_us or None,
                'baseline_p99_us': pre_result.ok_percentile(0.99),
                'recovery_p99_us': post_result.ok_percentile(0.99),
                'burst_ok_p99_us': burst_result.ok_percentile(0.99),
                'rejected_503': during.count(503),
                'timeouts_errors': during.timeouts + during.socket_errors,
                'unanswered': during.unanswered,
                'threads_peak': sampler.peak('os_threads'),
                'threads_final': sampler.rows[-1]['os_threads'] if sampler.rows else None,
                'threads_min': min((r['os_threads'] for r in sampler.rows), default=None),
                'tasks_peak': sampler.peak('tasks_running'),
                'rss_peak': sampler.peak('rss_bytes'),
                'cpu_seconds': _delta(sampler, 'cpu_seconds'),
                'cancelled': _delta(sampler, 'cancelled'),
                'wasted_s': _delta(sampler, 'wasted_seconds'),
                'spike_start_s': spike_start, 'spike_end_s': spike_end,
                'scrape_failures': sampler.failures,
                'wrk': {'pre': pre_result, 'steady': steady_result, 'burst': burst_result,
                        'post': post_result},
            }
            results.append(row)
            progress.done()
        ends = [r for r in results if r['endpoint'] == endpoint]
        marks = (min(r['spike_start_s'] for r in ends), max(r['spike_end_s'] for r in ends))
        if args.open_loop:
            subtitle = 'open-loop spike on %s: %d → %d requests/s for %ds' % (
                path, OPEN_LOOP[endpoint][0],
                OPEN_LOOP[endpoint][0] + OPEN_LOOP[endpoint][1] * p.burst_c / 2000, p.spike_s)
        else:
            subtitle = 'spike on %s: %d → %d connections for %ds' % (
                path, steady_c, steady_c + p.burst_c, p.spike_s)
        pngs = report.plot(out, 'spike-%s' % endpoint, files, marks, subtitle)
        for r in ends:
            r['plots'] = pngs
    return results


SPIKE_COLUMNS = [
    ('mode', 'mode', report.text),
    ('base p99', 'baseline_p99_us', report.ms),
    ('req/s', 'rps', report.n0),
    ('2xx/s', 'goodput', report.n0),
    ('p50 ok', 'ok_p50_us', report.ms),
    ('p99 ok', 'ok_p99_us', report.ms),
    ('max ok', 'ok_max_us', report.ms),
    ('503s', 'rejected_503', report.n0),
    ('timeouts+err', 'timeouts_errors', report.n0),
    ('threads peak', 'threads_peak', report.n0),
    ('final', 'threads_final', report.n0),
    ('RSS peak', 'rss_peak', report.mib),
    ('CPU s', 'cpu_seconds', report.n1),
    ('cancelled', 'cancelled', report.n0),
    ('wasted s', 'wasted_s', report.n1),
    ('after p99', 'recovery_p99_us', report.ms),
]


def baseline(args, out, progress):
    p = Params(args.quick)
    path = '/work/io?ms=20'
    results = []
    for mode in args.modes:
        label = 'baseline %s' % mode
        with lab.Run(args.binary, server_config(mode), out, 'baseline-%s' % mode) as run:
            sampler = run.sampler
            w = run.wrk(path, p.steady_c, p.baseline_s)
            _wait([w], progress, label, time.monotonic(), p.baseline_s, sampler)
            r = w.result()
        progress.done()
        results.append({
            'scenario': 'baseline', 'mode': mode, 'path': path, 'connections': p.steady_c,
            'rps': r.requests / p.baseline_s, 'goodput': r.count_class(2) / p.baseline_s,
            'ok_p50_us': r.ok_percentile(0.5), 'ok_p99_us': r.ok_percentile(0.99),
            'ok_max_us': r.ok_max_us or None, 'rejected_503': r.count(503),
            'timeouts_errors': r.timeouts + r.socket_errors,
            'threads_peak': sampler.peak('os_threads'), 'rss_peak': sampler.peak('rss_bytes'),
            'wrk': r,
        })
    return results


BASELINE_COLUMNS = [c for c in SPIKE_COLUMNS if c[1] in (
    'mode', 'rps', 'goodput', 'ok_p50_us', 'ok_p99_us', 'ok_max_us', 'rejected_503',
    'timeouts_errors', 'threads_peak', 'rss_peak')]


def disconnect(args, out, progress):
    p = Params(args.quick)
    path = '/work/io?ms=1000'
    give_up = 0.2
    results = []
    for mode in args.modes:
        label = 'disconnect %s' % mode
        progress.show('[%s] %d clients give up after %.1fs on %s for %ds' % (
            label, p.impatient_clients, give_up, path, p.disconnect_s), force=True)
        with lab.Run(args.binary, server_config(mode), out, 'disconnect-%s' % mode) as run:
            sampler = run.sampler
            counts = lab.impatient_clients(run.server.main_port, path, p.impatient_clients,
                                           p.disconnect_s, give_up)
            time.sleep(1.5)  # let work that runs on finish, so its waste is counted
        m = sampler.rows[-1] if sampler.rows else {}
        results.append({
            'scenario': 'disconnect', 'mode': mode, 'path': path,
            'abandoned': counts['abandoned'], 'answered': counts['answered'],
            'disconnects': _delta(sampler, 'disconnects'),
            'cancelled': _delta(sampler, 'cancelled'),
            'wasted_s': _delta(sampler, 'wasted_seconds'),
            'threads_peak': sampler.peak('os_threads'),
            'tasks_peak': sampler.peak('tasks_running'),
            'final_tasks': m.get('tasks_running'),
        })
    return results


DISCONNECT_COLUMNS = [
    ('mode', 'mode', report.text),
    ('abandoned', 'abandoned', report.n0),
    ('seen gone', 'disconnects', report.n0),
    ('cancelled', 'cancelled', report.n0),
    ('wasted s', 'wasted_s', report.n1),
    ('tasks peak', 'tasks_peak', report.n0),
    ('threads peak', 'threads_peak', report.n0),
]


def fanout(args, out, progress):
    p = Params(args.quick)
    results = []
    for mode in args.modes:
        with lab.Run(args.binary, server_config(mode), out, 'fanout-%s' % mode) as run:
            sampler = run.sampler
            for parallel in (0, 1):
                path = '/work/fanout?n=8&ms=50&parallel=%d' % parallel
                label = 'fanout %s parallel=%d' % (mode, parallel)
                w = run.wrk(path, 2, p.fanout_s)
                _wait([w], progress, label, time.monotonic(), p.fanout_s, sampler)
                r = w.result()
                results.append({
                    'scenario': 'fanout', 'mode': mode, 'path': path,
                    'parallel': parallel, 'ok_p50_us': r.ok_percentile(0.5),
                    'ok_p99_us': r.ok_percentile(0.99), 'goodput': r.count_class(2) / p.fanout_s,
                    'threads_peak': sampler.peak('os_threads'), 'wrk': r,
                })
        progress.done()
    return results


FANOUT_COLUMNS = [
    ('mode', 'mode', report.text),
    ('parallel', 'parallel', report.n0),
    ('p50 ok', 'ok_p50_us', report.ms),
    ('p99 ok', 'ok_p99_us', report.ms),
    ('2xx/s', 'goodput', report.n1),
    ('threads peak', 'threads_peak', report.n0),
]

SCENARIOS = {
    'spike': (spike, SPIKE_COLUMNS),
    'baseline': (baseline, BASELINE_COLUMNS),
    'disconnect': (disconnect, DISCONNECT_COLUMNS),
    'fanout': (fanout, FANOUT_COLUMNS),
}
