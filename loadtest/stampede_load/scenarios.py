"""The load-test scenarios: spike (the runaway), baseline, disconnect, fanout.

Each runs every requested mode on a fresh server (same config but the mode), samples its
metrics, and returns table rows; the spike also writes time series and plots."""

import dataclasses
import os
import time

from . import adaptive
from . import criticality
from . import failure_labs
from . import fleet_experiments
from . import lab
from . import records
from . import report
from . import wrkparse

# A mode, or a mode with settings of its own ("coroutine:max_tasks=64"): each runs as its own
# row, labelled e.g. "coroutine (max_tasks 64)".
MODES = ['blocking', 'thread_per_request', 'bounded', 'coroutine', 'coroutine:max_tasks=64']
BASE_MODES = ['blocking', 'thread_per_request', 'bounded', 'coroutine']


def parse_mode_spec(spec):
    """'coroutine:max_tasks=64' -> ('coroutine', {'max_tasks': '64'}); ValueError if bad."""
    name, _, rest = spec.partition(':')
    if name not in BASE_MODES:
        raise ValueError('unknown mode: %s' % name)
    settings = {}
    for item in filter(None, rest.split(',')):
        key, eq, value = item.partition('=')
        if not eq or not key or not value:
            raise ValueError('mode settings are key=value: %s' % spec)
        settings[key] = value
    return name, settings


def mode_label(spec):
    """How a mode spec is shown: 'coroutine (max_tasks 64)'."""
    name, settings = parse_mode_spec(spec)
    if not settings:
        return name
    return '%s (%s)' % (name, ', '.join('%s %s' % kv for kv in settings.items()))


def mode_slug(spec):
    """A mode spec as a file-name part: 'coroutine-max_tasks64'."""
    name, settings = parse_mode_spec(spec)
    return '-'.join([name] + ['%s%s' % kv for kv in settings.items()])

ENDPOINTS = {
    'io': '/work/io?ms=100',
    'cpu': '/work/cpu?ms=5',
}


# The model (config/stampede.yaml, read through the binary) sizes every server: a downstream
# of downstream.capacity slots behind /work/io, work.request_kb held per request, the pool sized
# to the downstream by Little's law, supervisor.memory_limit_mb. A spike overrides only the mode
# (and its own settings, "coroutine:max_tasks=64"); /work/cpu's bottleneck is the cores, so
# there the pool gets a worker per core. Clients give up after DEADLINE_S, as a user or an RPC
# deadline does.
CORES = os.cpu_count() or 2
DEADLINE_S = 2


def server_config(model, spec, workload='io', request_kb=None):
    """The model's config with the mode (and its own settings) and, for CPU work, a pool of a
    worker per core; `request_kb` when the run asks for another working set."""
    mode, settings = parse_mode_spec(spec)
    overrides = {'mode': mode}
    overrides.update({'%s.%s' % (mode, k): v for k, v in settings.items()})
    why = ['the mode under test']
    if workload == 'cpu':
        overrides.update({'bounded.workers': CORES, 'bounded.queue_capacity': max(1, CORES // 4)})
        why.append('CPU work: a worker per core')
    if request_kb is not None and request_kb != model['work.request_kb']:
        overrides.update({'work.request_kb': request_kb,
                          'limits.max_kb': max(model['limits.max_kb'], request_kb)})
        why.append('--request-kb')
    return model.config_text(overrides, '; '.join(why))


def capacity_per_s(model, endpoint):
    """What the bottleneck can serve per second: the downstream for io, the cores for cpu."""
    ms = int(ENDPOINTS[endpoint].split('ms=')[1])
    if endpoint == 'io':
        return model['downstream.capacity'] * 1000.0 / ms
    return CORES * 1000.0 / ms


# --open-loop rates (requests/s): (steady, burst at the full 2,000-connection budget). The burst
# is scaled with the connection budget, so --quick offers proportionally less.
OPEN_LOOP = {
    'io': (8, 2000),  # capacity: the downstream's 320/s (blocking: 10/s)
    'cpu': (100, 1000),  # capacity: about 200/s per core
}


class Params:
    """Durations (s) and connection counts; --quick shrinks the durations to a smoke run. The
    burst stays the demo's 2,000 clients: a smaller one fits an unbounded mode's working sets
    into the memory limit, and its report would read "unbounded serves more"."""

    def __init__(self, quick):
        self.quick = quick
        self.pre_s = 2 if quick else 5
        self.spike_s = 4 if quick else 10
        self.recovery_s = 3 if quick else 8
        self.steady_c = 4 if quick else 8
        self.burst_c = 2000
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


def increase(rows, name):
    """How much a counter rose over the rows, across server restarts (a drop is a restart:
    the counter started again from zero)."""
    total = 0.0
    for prev, row in zip(rows, rows[1:]):
        a, b = prev.get(name), row.get(name)
        if a is None or b is None:
            continue
        total += b - a if b >= a else b
    return total


def _delta(sampler, name):
    return increase(sampler.rows, name)


def _in(rows, start, end):
    return [r for r in rows if start <= r['t'] <= end]


def load_kind(args):
    if args.open_loop:
        return 'open-loop'
    return 'wrk' if args.wrk else 'clients'


@dataclasses.dataclass
class SpikeRun:
    """What one mode's spike run measured, before it is made a row of the table."""
    mode: str
    slug: str
    sampler: object
    pre: object       # the generators' results: steady load before the spike,
    steady: object    # steady load during it,
    burst: object     # the burst itself,
    post: object      # and steady load after it
    spike_start: float  # seconds since the sampler's start
    spike_end: float
    deaths: list
    oom_kills: int
    memory_limit: object  # bytes, or None
    memory_note: str


@dataclasses.dataclass
class SpikeRow(records.Row):
    """One mode's line of the spike's table and of summary.json: the spike window's figures,
    and the whole run's where a name says so. Times in seconds, latencies in µs; None where
    a figure does not apply (no answers, no downstream, no cgroup)."""
    # scenario, mode: the mode's label (with its limit, where one was set)
    endpoint: str           # io or cpu
    path: str
    load: str               # clients, open-loop or wrk
    deadline_s: float       # the clients' deadline
    capacity_per_s: float   # what the bottleneck can serve
    memory_limit_bytes: object
    memory_limit_note: str
    request_kb: int
    sent: int               # requests that ended in the window, however they ended
    sent_per_s: float
    rps: float              # answered per second (timeouts left out)
    goodput: float          # answered 2xx within the deadline, per second
    goodput_per_s: float
    ok: int
    ok_p50_us: object
    ok_p99_us: object
    ok_max_us: object
    baseline_p99_us: object  # before the spike
    recovery_p99_us: object  # after it
    burst_ok_p99_us: object
    rejected_503: int
    timeouts: int           # abandoned at the deadline
    timeouts_errors: int
    unanswered: int
    oom_kills: int
    deaths: list            # the supervisor's record of each death
    lost_in_flight: int     # requests in flight when the server died
    recovery_s: object      # worst time from a kill to answering again
    first_death_after_spike_s: object
    ds_busy_pct: object     # downstream slots in use during the spike (io only)
    threads_peak: object
    threads_final: object
    threads_min: object
    tasks_peak: object
    rss_peak: object
    cpu_seconds: float
    cancelled: float        # work stopped because its client left
    wasted_s: float         # handler time spent for clients who had left
    spike_start_s: float
    spike_end_s: float
    scrape_failures: int
    wrk: dict               # the generators' results per phase (pre, steady, burst, post)
    verdict: str = ''       # the sentence printed for the mode
    plots: list = dataclasses.field(default_factory=list)


def spike(args, out, progress):
    """Per endpoint and mode: steady load, steady load plus a burst, steady load again.
    `args.params`, when set, replaces the durations and connection counts."""
    p = getattr(args, 'params', None) or Params(args.quick)
    kind = load_kind(args)
    results = []
    for endpoint in args.endpoints:
        files, client_files, ends = [], [], []
        for spec in args.modes:
            measured = _spike_run(args, p, kind, endpoint, spec, out, progress)
            csv_path = os.path.join(out, 'series-%s-%s.csv' % (endpoint, measured.slug))
            report.write_csv(csv_path, report.derive(measured.sampler.rows,
                                                     measured.sampler.buckets))
            files.append((measured.mode, csv_path))
            client_path = os.path.join(out, 'clients-%s-%s.csv' % (endpoint, measured.slug))
            every = [measured.pre, measured.steady, measured.burst, measured.post]
            if report.write_client_series(client_path, every):
                client_files.append((measured.mode, client_path))
            row = _spike_row(args, p, kind, endpoint, measured)
            ends.append(row)
            results.append(row)
            progress.done()
        pngs = _spike_plots(args, p, kind, endpoint, out, files, client_files, ends)
        for r in ends:
            r.plots = pngs
    return [r.as_dict() for r in results]


def _spike_run(args, p, kind, endpoint, spec, out, progress):
    """One mode's server through the three phases, sampled all along."""
    path = ENDPOINTS[endpoint]
    steady_c = p.steady_for(endpoint)
    mode, slug = mode_label(spec), mode_slug(spec)
    label = 'spike %s %s' % (endpoint, mode)
    progress.show('[%s] starting' % label, force=True)
    # A killed server is restarted at once, without the model's back-off, so that the spike's
    # seconds show every kill: how often the runaway dies is the figure.
    args.model.note('the spike: the driver restarts a killed server at once',
                    {'supervisor.restart_backoff_ms': 0})
    with lab.Run(args.binary, server_config(args.model, spec, endpoint, args.request_kb), out,
                 'spike-%s-%s' % (endpoint, slug), args.memory_limit,
                 admin_port=getattr(args, 'admin_port', 0)) as run:
        if args.memory_limit and not run.cgroup:
            progress.show('[%s] %s' % (label, run.memory_note), force=True)
        sampler = run.sampler
        total = p.pre_s + p.spike_s + p.recovery_s
        started = time.monotonic()

        def load(steady_phase, seconds):
            if kind == 'open-loop':
                rate, conns = (OPEN_LOOP[endpoint][0], steady_c * 8) if steady_phase \
                    else (OPEN_LOOP[endpoint][1] * p.burst_c / 2000, p.burst_c)
                return run.open_loop(args.openloop_binary, path, rate, seconds, conns,
                                     args.deadline)
            conns = steady_c if steady_phase else p.burst_c
            if kind == 'wrk':
                return run.wrk(path, conns, seconds, polite=not args.retry_at_once,
                               timeout_s=args.deadline)
            return run.clients(args.openloop_binary, path, conns, seconds, args.deadline,
                               polite=not args.retry_at_once)

        def finished(*generators):
            _wait(list(generators), progress, label, started, total, sampler)
            results = []
            for g in generators:
                r = g.result()
                r.started_at = g.started_at
                results.append(r)
            return results

        run.mark('%s: steady load' % mode)
        pre, = finished(load(True, p.pre_s))
        spike_start = time.monotonic() - sampler.t0
        run.mark('%s: the spike, %d clients' % (mode, p.burst_c))
        steady, burst = finished(load(True, p.spike_s), load(False, p.spike_s))
        spike_end = time.monotonic() - sampler.t0
        run.mark('%s: the spike ends' % mode)
        post, = finished(load(True, p.recovery_s))
        return SpikeRun(mode, slug, sampler, pre, steady, burst, post, spike_start, spike_end,
                        list(run.supervisor.deaths), run.supervisor.oom_kills(),
                        run.cgroup.limit if run.cgroup else None, run.memory_note)


def _spike_row(args, p, kind, endpoint, m):
    """The figures of the spike phase, and of the whole run where a column says so."""
    every = [m.pre, m.steady, m.burst, m.post]
    during = wrkparse.merge([m.steady, m.burst])
    seconds = p.spike_s
    # Rates count what ended inside the spike window (the generators' last answers come up to
    # a deadline later); wrk keeps no timeline, so its totals are used.
    seen = report.window_counts(every, m.spike_start, m.spike_end)
    if seen:
        seconds = max(1e-9, m.spike_end - m.spike_start)
        ended = sum(seen.values())
        ok_in_window, rejected_in_window = seen['ok'], seen['503']
        timeouts_in_window = seen['timeout']
    else:
        ended = during.sent if during.sent is not None else during.requests
        ok_in_window, rejected_in_window = during.count_class(2), during.count(503)
        timeouts_in_window = during.timeouts
    sampler = m.sampler
    spike_rows = _in(sampler.rows, m.spike_start, m.spike_end)
    busy = [r['ds_in_use'] / r['ds_capacity'] for r in spike_rows
            if r.get('ds_capacity') and r.get('ds_in_use') is not None]
    recoveries = [d['recovery_s'] for d in m.deaths if d['recovery_s'] is not None]
    row = SpikeRow(
        scenario='spike', endpoint=endpoint, path=ENDPOINTS[endpoint],
        mode=m.mode, load=kind, deadline_s=args.deadline,
        capacity_per_s=capacity_per_s(args.model, endpoint),
        memory_limit_bytes=m.memory_limit,
        memory_limit_note=m.memory_note,
        request_kb=args.request_kb,
        sent=ended,
        sent_per_s=ended / seconds,
        rps=(ended - timeouts_in_window) / seconds,
        goodput=ok_in_window / seconds,
        goodput_per_s=ok_in_window / seconds,
        ok=ok_in_window,
        ok_p50_us=during.ok_percentile(0.50),
        ok_p99_us=during.ok_percentile(0.99),
        ok_max_us=during.ok_max_us or None,
        baseline_p99_us=m.pre.ok_percentile(0.99),
        recovery_p99_us=m.post.ok_percentile(0.99),
        burst_ok_p99_us=m.burst.ok_percentile(0.99),
        rejected_503=rejected_in_window,
        timeouts=timeouts_in_window,
        timeouts_errors=during.timeouts + during.socket_errors,
        unanswered=during.unanswered,
        oom_kills=m.oom_kills,
        deaths=m.deaths,
        lost_in_flight=sum(r.lost for r in every),
        recovery_s=max(recoveries) if recoveries else None,
        first_death_after_spike_s=(m.deaths[0]['t'] - m.spike_start) if m.deaths else None,
        # /work/cpu does not call the downstream: no figure rather than a 0.
        ds_busy_pct=100.0 * sum(busy) / len(busy) if busy and endpoint == 'io' else None,
        threads_peak=sampler.peak('os_threads'),
        threads_final=sampler.rows[-1]['os_threads'] if sampler.rows else None,
        threads_min=min((r['os_threads'] for r in sampler.rows), default=None),
        tasks_peak=sampler.peak('tasks_running'),
        rss_peak=sampler.peak('rss_bytes'),
        cpu_seconds=_delta(sampler, 'cpu_seconds'),
        cancelled=_delta(sampler, 'cancelled'),
        wasted_s=_delta(sampler, 'wasted_seconds'),
        spike_start_s=m.spike_start, spike_end_s=m.spike_end,
        scrape_failures=sampler.failures,
        wrk={'pre': m.pre, 'steady': m.steady, 'burst': m.burst, 'post': m.post},
    )
    row.verdict = report.verdict(row.as_dict())
    return row


def _spike_plots(args, p, kind, endpoint, out, files, client_files, ends):
    """The endpoint's plots: every mode on one time axis, the spike shaded."""
    path = ENDPOINTS[endpoint]
    steady_c = p.steady_for(endpoint)
    marks = (min(r.spike_start_s for r in ends), max(r.spike_end_s for r in ends))
    if kind == 'open-loop':
        subtitle = 'open-loop spike on %s: %d → %d requests/s for %ds' % (
            path, OPEN_LOOP[endpoint][0],
            OPEN_LOOP[endpoint][0] + OPEN_LOOP[endpoint][1] * p.burst_c / 2000, p.spike_s)
    else:
        subtitle = 'spike on %s: %d → %d %s for %ds' % (
            path, steady_c, steady_c + p.burst_c,
            'wrk connections' if kind == 'wrk' else 'clients (deadline %gs)' % args.deadline,
            p.spike_s)
    limit = next((r.memory_limit_bytes for r in ends if r.memory_limit_bytes), None)
    return report.plot(out, 'spike-%s' % endpoint, files, marks, subtitle,
                       client_files=client_files,
                       capacity=(capacity_per_s(args.model, endpoint),
                                 'downstream capacity' if endpoint == 'io'
                                 else 'CPU capacity (cores × 1000/ms)'),
                       memory_limit=limit,
                       deaths={r.mode: [d['t'] for d in r.deaths] for r in ends})


SPIKE_COLUMNS = records.check_columns(SpikeRow, [
    ('mode', 'mode', report.text),
    ('base p99', 'baseline_p99_us', report.ms),
    ('sent/s', 'sent_per_s', report.n0),
    ('goodput/s', 'goodput', report.n0),
    ('p50 ok', 'ok_p50_us', report.ms),
    ('p99 ok', 'ok_p99_us', report.ms),
    ('503s', 'rejected_503', report.n0),
    ('timeouts', 'timeouts', report.n0),
    ('OOM kills', 'oom_kills', report.n0),
    ('lost in flight', 'lost_in_flight', report.n0),
    ('recovery s', 'recovery_s', report.n1),
    ('tasks peak', 'tasks_peak', report.n0),
    ('threads peak', 'threads_peak', report.n0),
    ('RSS peak', 'rss_peak', report.mib),
    ('downstream busy %', 'ds_busy_pct', report.n0),
    ('cancelled', 'cancelled', report.n0),
    ('wasted s', 'wasted_s', report.n1),
    ('after p99', 'recovery_p99_us', report.ms),
])


def baseline(args, out, progress):
    p = Params(args.quick)
    path = '/work/io?ms=20'
    results = []
    for spec in args.modes:
        mode = mode_label(spec)
        label = 'baseline %s' % mode
        with lab.Run(args.binary, server_config(args.model, spec), out,
                     'baseline-%s' % mode_slug(spec)) as run:
            sampler = run.sampler
            w = run.wrk(path, p.steady_c, p.baseline_s)
            _wait([w], progress, label, time.monotonic(), p.baseline_s, sampler)
            r = w.result()
        progress.done()
        results.append(records.BaselineRow(
            scenario='baseline', mode=mode, path=path, connections=p.steady_c,
            rps=r.requests / p.baseline_s, goodput=r.count_class(2) / p.baseline_s,
            ok_p50_us=r.ok_percentile(0.5), ok_p99_us=r.ok_percentile(0.99),
            ok_max_us=r.ok_max_us or None, rejected_503=r.count(503),
            timeouts_errors=r.timeouts + r.socket_errors,
            threads_peak=sampler.peak('os_threads'), rss_peak=sampler.peak('rss_bytes'),
            wrk=r))
    return [r.as_dict() for r in results]


BASELINE_COLUMNS = records.check_columns(records.BaselineRow, [
    ('mode', 'mode', report.text),
    ('req/s', 'rps', report.n0),
    ('2xx/s', 'goodput', report.n0),
    ('p50 ok', 'ok_p50_us', report.ms),
    ('p99 ok', 'ok_p99_us', report.ms),
    ('max ok', 'ok_max_us', report.ms),
    ('503s', 'rejected_503', report.n0),
    ('timeouts+err', 'timeouts_errors', report.n0),
    ('threads peak', 'threads_peak', report.n0),
    ('RSS peak', 'rss_peak', report.mib),
])


def disconnect(args, out, progress):
    p = Params(args.quick)
    path = '/work/io?ms=1000'
    give_up = 0.2
    results = []
    for spec in args.modes:
        mode = mode_label(spec)
        label = 'disconnect %s' % mode
        progress.show('[%s] %d clients give up after %.1fs on %s for %ds' % (
            label, p.impatient_clients, give_up, path, p.disconnect_s), force=True)
        with lab.Run(args.binary, server_config(args.model, spec), out,
                     'disconnect-%s' % mode_slug(spec)) as run:
            sampler = run.sampler
            counts = lab.impatient_clients(run.server.main_port, path, p.impatient_clients,
                                           p.disconnect_s, give_up)
            time.sleep(1.5)  # let work that runs on finish, so its waste is counted
        m = sampler.rows[-1] if sampler.rows else {}
        results.append(records.DisconnectRow(
            scenario='disconnect', mode=mode, path=path,
            abandoned=counts['abandoned'], answered=counts['answered'],
            disconnects=_delta(sampler, 'disconnects'),
            cancelled=_delta(sampler, 'cancelled'),
            wasted_s=_delta(sampler, 'wasted_seconds'),
            threads_peak=sampler.peak('os_threads'),
            tasks_peak=sampler.peak('tasks_running'),
            final_tasks=m.get('tasks_running')))
    return [r.as_dict() for r in results]


DISCONNECT_COLUMNS = records.check_columns(records.DisconnectRow, [
    ('mode', 'mode', report.text),
    ('abandoned', 'abandoned', report.n0),
    ('seen gone', 'disconnects', report.n0),
    ('cancelled', 'cancelled', report.n0),
    ('wasted s', 'wasted_s', report.n1),
    ('tasks peak', 'tasks_peak', report.n0),
    ('threads peak', 'threads_peak', report.n0),
])


def fanout(args, out, progress):
    p = Params(args.quick)
    results = []
    for spec in args.modes:
        mode = mode_label(spec)
        with lab.Run(args.binary, server_config(args.model, spec), out,
                     'fanout-%s' % mode_slug(spec)) as run:
            sampler = run.sampler
            for parallel in (0, 1):
                path = '/work/fanout?n=8&ms=50&parallel=%d' % parallel
                label = 'fanout %s parallel=%d' % (mode, parallel)
                w = run.wrk(path, 2, p.fanout_s)
                _wait([w], progress, label, time.monotonic(), p.fanout_s, sampler)
                r = w.result()
                results.append(records.FanoutRow(
                    scenario='fanout', mode=mode, path=path,
                    parallel=parallel, ok_p50_us=r.ok_percentile(0.5),
                    ok_p99_us=r.ok_percentile(0.99), goodput=r.count_class(2) / p.fanout_s,
                    threads_peak=sampler.peak('os_threads'), wrk=r))
        progress.done()
    return [r.as_dict() for r in results]


FANOUT_COLUMNS = records.check_columns(records.FanoutRow, [
    ('mode', 'mode', report.text),
    ('parallel', 'parallel', report.n0),
    ('p50 ok', 'ok_p50_us', report.ms),
    ('p99 ok', 'ok_p99_us', report.ms),
    ('2xx/s', 'goodput', report.n1),
    ('threads peak', 'threads_peak', report.n0),
])


# What the live page's banner asks and points at while a scenario runs: (predict, watch).
PROMPTS = {
    'criticality': ('Critical clients, then a flood of sheddable ones at three times capacity. '
                    'Do the critical keep their goodput, with criticality and without it?',
                    'status per second; the limit and the places in use'),
    'labs': ('Each lab runs its unsafe variant, then its fix, under load. Which fail, in which '
             'modes, and what finds them?', 'the labs chart; threads and tasks'),
    'spike': ('A spike of clients with deadlines hits each mode in turn. Which mode serves the '
              'most within the deadline, and which one is OOM-killed?',
              'goodput and status per second; threads, tasks and RSS against the memory limit'),
    'baseline': ('No spike: each mode at a steady load. Do the modes differ at all?',
                 'requests per second and latency'),
    'disconnect': ('Clients give up and leave. Which modes go on working for them?',
                   'wasted work (seconds per second)'),
    'fanout': ('Each request calls the downstream several times. In parallel or in turn, in '
               'each mode: which is faster, and what does it cost?',
               'the downstream in use and waiting; latency'),
    'fleet': ('Three replicas behind HAProxy; one slows down. Does the fleet fail with it, and '
              'do retries make it worse?', 'each replica\'s live page: goodput and status'),
    'adaptive': ('The downstream loses three quarters of its capacity, live. Does a static '
                 'limit or an adaptive one keep latency down?',
                 'the limit against requests in flight, and latency'),
}

SCENARIOS = {
    'labs': (failure_labs.labs, failure_labs.columns_for),
    'spike': (spike, SPIKE_COLUMNS),
    'baseline': (baseline, BASELINE_COLUMNS),
    'disconnect': (disconnect, DISCONNECT_COLUMNS),
    'fanout': (fanout, FANOUT_COLUMNS),
    'fleet': (fleet_experiments.fleet, fleet_experiments.columns_for),
    'adaptive': (adaptive.adaptive, adaptive.columns_for),
    'criticality': (criticality.criticality, criticality.columns_for),
}
