"""loadtest/run adaptive: static and adaptive limits on one server while the bottleneck moves.

Each variant is a fresh stampede under open-loop clients with a deadline. In one run, with
every change made live (SIGHUP), the downstream goes from 32 slots to 8, 64 and 32 again; then
each call takes twice as long; then the work is CPU (/work/cpu) instead. Per phase and variant
it reports goodput as a share of that phase's capacity, the admitted p99 against the unloaded
p99, the mean limit against Little's law (capacity × service time), and how long the limit took
to settle after the step."""

import dataclasses
import os
import signal
import statistics
import time

from . import lab
from . import records
from . import report
from . import wrkparse

SERVICE_MS = 100   # each downstream call holds its slot this long
CPU_MS = 10        # each /work/cpu request's CPU time
DEADLINE_S = 1.0   # clients give up after this
RATE = 800         # requests/s offered in the downstream phases: above every capacity
CORES = os.cpu_count() or 1
CPU_RATE = int(1.5 * CORES * 1000 / CPU_MS)

# Only the algorithm: its window and bounds are the shipped defaults.
def limiter(algorithm):
    return {'limiter.algorithm': algorithm}


# The bounded variants keep the FIFO queue of 64 and the 1 s queue timeout they were sized with:
# this run is about where the limit is, not about the queue.
QUEUE = {'bounded.queue_capacity': 64, 'bounded.queue_timeout_ms': 1000}
VARIANTS = [
    # (name, mode, overrides): the static ones are sized for the first phase (32 slots).
    ('coroutine static', 'coroutine', {'coroutine.max_tasks': 64}),
    ('coroutine aimd', 'coroutine', limiter('aimd')),
    ('coroutine gradient2', 'coroutine', limiter('gradient2')),
    ('coroutine vegas', 'coroutine', limiter('vegas')),
    ('bounded static', 'bounded', dict(QUEUE, **{'bounded.workers': 32})),
    ('bounded codel', 'bounded', dict(QUEUE, **{'bounded.workers': 32, 'bounded.queue': 'codel'})),
    ('bounded aimd', 'bounded', dict(QUEUE, **{'bounded.workers': 64}, **limiter('aimd'))),
    ('bounded gradient2', 'bounded', dict(QUEUE, **{'bounded.workers': 64},
                                          **limiter('gradient2'))),
    ('bounded vegas', 'bounded', dict(QUEUE, **{'bounded.workers': 64}, **limiter('vegas'))),
]
# The variants whose limit adapts; the others' limits are fixed by their config.
ADAPTIVE = {name for name, _, extra in VARIANTS if 'limiter.algorithm' in extra}
STATIC = {
    'coroutine static': 'coroutine.max_tasks 64',
    'bounded static': '32 workers, a FIFO queue of 64',
    'bounded codel': '32 workers, a CoDel queue of 64 (5 ms target, 100 ms interval)',
}


class Phase:
    def __init__(self, name, seconds, slots, path, rate, capacity, ideal, capacity_phase):
        self.name, self.seconds, self.slots, self.path = name, seconds, slots, path
        self.rate, self.capacity, self.ideal = rate, capacity, ideal
        self.capacity_phase = capacity_phase  # one of the downstream-capacity steps


def phases(quick):
    """The capacity steps get the most time: what a limit does once it has settled is what
    they measure; the slow-call and CPU phases show where a limit goes, in fewer seconds."""
    io = '/work/io?ms=%d' % SERVICE_MS
    per_slot = 1000.0 / SERVICE_MS
    steps = [(32, 2 if quick else 5), (8, 2 if quick else 7), (64, 2 if quick else 7),
             (32, 2 if quick else 7)]
    out = [Phase('%d slots%s' % (n, ' again' if i == 3 else ''), t, n, io, RATE, n * per_slot,
                 n, True) for i, (n, t) in enumerate(steps)]
    out.append(Phase('calls take 2x', 2 if quick else 3, 32, '/work/io?ms=%d' % (2 * SERVICE_MS),
                     RATE, 32 * per_slot / 2, 32, False))
    out.append(Phase('cpu', 2 if quick else 3, 32, '/work/cpu?ms=%d' % CPU_MS, CPU_RATE,
                     CORES * 1000.0 / CPU_MS, CORES, False))
    return out


def server_config(model, mode, extra, slots):
    """The model with the variant's limit and the phase's downstream, 16 KiB per request (this
    run moves the bottleneck; memory is the spike's lesson) and the mode's file not watched
    (the phases change it by SIGHUP)."""
    overrides = {'mode': mode, 'work.request_kb': 16, 'downstream.capacity': slots,
                 'reload.watch': False}
    overrides.update(extra)
    return model.config_text(overrides, 'adaptive: the limit, the phase\'s downstream, '
                             '16 KiB per request')


def _median(values):
    return statistics.median(values) if values else None


def settle_seconds(points, start, end):
    """Seconds from `start` until the limit stays within max(2, 20 %) of where it ends the
    phase (the median of its last 30 %); None if it never stays there."""
    inside = [(t, v) for t, v in points if start <= t <= end and v is not None]
    if len(inside) < 3:
        return None
    tail = [v for t, v in inside if t >= end - 0.3 * (end - start)]
    final = _median(tail) or 0
    band = max(2.0, 0.2 * final)
    settled = None
    for t, v in inside:
        if abs(v - final) > band:
            settled = None
        elif settled is None:
            settled = t
    return None if settled is None else round(max(0.0, settled - start), 1)


def unloaded_p99(args, out, progress, plist, quick):
    """Each workload's p99 alone: a few requests a second to a server with no limit. The I/O
    paths share the run (they only wait); the CPU path runs alone."""
    io = sorted({p.path for p in plist if p.path.startswith('/work/io')})
    cpu = sorted({p.path for p in plist} - set(io))
    found = {}
    config = server_config(args.model, 'coroutine', {}, 32)
    with lab.Run(args.binary, config, out, 'adaptive-unloaded') as run:
        for group in (io, cpu):
            progress.show('[adaptive] unloaded p99 of %s' % ', '.join(group), force=True)
            gens = [(path, run.open_loop(args.openloop_binary, path, 20, 1 if quick else 2, 50,
                                         timeout_s=DEADLINE_S)) for path in group]
            for path, g in gens:
                found[path] = g.result().ok_percentile(0.99)
    return found


def _hup(run, text):
    lab.write_atomically(run.server.config_path, text)
    os.kill(run.server.proc.pid, signal.SIGHUP)


def run_variant(args, out, progress, name, mode, extra, plist):
    """Runs the phases; returns when the first began, each phase's window (on the sampler's
    clock) and its two halves' client results, and the sampler's rows."""
    slug = name.replace(' ', '-')
    with lab.Run(args.binary, server_config(args.model, mode, extra, plist[0].slots), out,
                 'adaptive-' + slug) as run:
        halves = []
        windows = []
        total = sum(p.seconds for p in plist)
        begun = time.monotonic() - run.sampler.t0

        def wait_until(t, p):
            while time.monotonic() - run.sampler.t0 < t:
                row = run.sampler.latest()
                progress.show('[adaptive %s] %s  %4.1f/%ds  limit=%s  in flight=%s' % (
                    name, p.name, time.monotonic() - run.sampler.t0 - begun, total,
                    report.n0(row.get('limit')), report.n0(row.get('limit_inflight'))))
                time.sleep(0.1)

        for p in plist:
            if p is not plist[0]:
                _hup(run, server_config(args.model, mode, extra, p.slots))
            # Two clients in turn, so that the second half (the limit settled, or not) has a
            # p99 of its own; the first one's late answers overlap the second's start.
            first = p.seconds // 2
            g1 = run.open_loop(args.openloop_binary, p.path, p.rate, first, 4000,
                               timeout_s=DEADLINE_S)
            windows.append((g1.started_at, g1.started_at + p.seconds))
            wait_until(g1.started_at + first, p)
            g2 = run.open_loop(args.openloop_binary, p.path, p.rate, p.seconds - first, 4000,
                               timeout_s=DEADLINE_S)
            halves.append((g1, g2))
            wait_until(windows[-1][1], p)
        results = []
        for g1, g2 in halves:
            pair = []
            for g in (g1, g2):
                r = g.result()
                r.started_at = g.started_at
                pair.append(r)
            results.append(pair)
        rows_series = list(run.sampler.rows)
    return begun, windows, results, rows_series


@dataclasses.dataclass
class PhaseRow(records.Row):
    """One variant in one phase. Latencies in µs; a limit is requests in flight."""
    path: str               # the phase's name (its section of the report)
    variant: str
    phase: str
    capacity_per_s: float
    offered_per_s: float
    goodput_per_s: float
    goodput_pct: float      # of the phase's capacity
    p99_us: object
    steady_p99_us: object   # the phase's second half
    unloaded_p99_us: object
    p99_x: object           # against unloaded
    steady_p99_x: object
    mean_limit: object
    first_limit: object
    final_limit: object
    middle_limit: object
    ideal_limit: int        # Little's law's
    settle_s: object        # adaptive variants only
    rejected_503: int
    timeouts: int
    capacity_phase: bool    # the downstream's capacity is what the phase is about
    seconds: float
    context: str = ''
    plots: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SummaryRow(records.Row):
    """One variant over its capacity phases: whether it held the bound, and why not."""
    path: str
    variant: str
    min_goodput_pct: object
    max_p99_x: object
    max_settle_s: object
    holds: bool = False
    verdict: str = ''
    plots: list = dataclasses.field(default_factory=list)


def adaptive(args, out, progress):
    plist = phases(args.quick)
    unloaded = unloaded_p99(args, out, progress, plist, args.quick)
    rows, runs = [], []
    for name, mode, extra in VARIANTS:
        progress.show('[adaptive %s] starting' % name, force=True)
        begun, windows, results, series = run_variant(args, out, progress, name, mode, extra,
                                                      plist)
        points = [(r['t'], r.get('limit') or None) for r in series]
        runs.append((name, begun, windows, results, series))
        flat = [r for pair in results for r in pair]
        for p, (a, b), (first, second) in zip(plist, windows, results):
            limits = [v for t, v in points if a <= t <= b and v is not None]
            tail = [v for t, v in points if b - 0.3 * (b - a) <= t <= b and v is not None]
            middle = [v for t, v in points if a + (b - a) / 3 <= t <= a + 2 * (b - a) / 3
                      and v is not None]
            both = wrkparse.merge([first, second])
            seen = report.window_counts(flat, a, b) or {}
            base = unloaded[p.path]
            p99, steady = both.ok_percentile(0.99), second.ok_percentile(0.99)
            rows.append(PhaseRow(
                scenario='adaptive', mode=mode, path=p.name, variant=name, phase=p.name,
                capacity_per_s=p.capacity, offered_per_s=p.rate,
                # Answers that came back within the phase, whenever they were asked.
                goodput_per_s=seen.get('ok', 0) / p.seconds,
                goodput_pct=100.0 * seen.get('ok', 0) / p.seconds / p.capacity,
                p99_us=p99, steady_p99_us=steady, unloaded_p99_us=base,
                p99_x=p99 / base if p99 and base else None,
                steady_p99_x=steady / base if steady and base else None,
                mean_limit=statistics.mean(limits) if limits else None,
                first_limit=limits[0] if limits else None,
                final_limit=_median(tail), middle_limit=_median(middle),
                ideal_limit=p.ideal,
                settle_s=settle_seconds(points, a, b) if name in ADAPTIVE else None,
                rejected_503=both.count(503), timeouts=both.timeouts,
                capacity_phase=p.capacity_phase, seconds=p.seconds))
    summary = _summary(rows, plist)
    rows[0].context = _context(plist, unloaded)
    summary[0].plots = _plots(out, runs, plist)
    return [r.as_dict() for r in rows + summary]


def _context(plist, unloaded):
    lines = ['Clients give up after %g s. Each variant is a fresh server; its phases follow each '
             'other live:' % DEADLINE_S]
    for p in plist:
        lines.append('  %-14s %-18s %4d requests/s offered; capacity %4.0f/s; Little\'s law '
                     'limit %d; unloaded p99 %s' % (
                         p.name, p.path, p.rate, p.capacity, p.ideal,
                         report.ms(unloaded[p.path])))
    lines.append('Static variants: ' + '; '.join('%s = %s' % kv for kv in STATIC.items()) +
                 '. Adaptive bounded variants run 64 workers behind their limit.')
    return '\n'.join(lines)


def _summary(rows, plist):
    out = []
    for name, _, _ in VARIANTS:
        mine = [r for r in rows if r.variant == name]
        cap = [r for r in mine if r.capacity_phase]
        goodputs = [r.goodput_pct for r in cap]
        p99s = [r.steady_p99_x for r in cap if r.steady_p99_x is not None]
        settles = [r.settle_s for r in cap]
        s = SummaryRow(scenario='adaptive', mode=name.split()[0], path='summary', variant=name,
                       min_goodput_pct=min(goodputs) if goodputs else None,
                       max_p99_x=max(p99s) if p99s else None,
                       max_settle_s=None if any(v is None for v in settles) else max(settles))
        adaptive = name in ADAPTIVE
        s.holds = bool(goodputs and min(goodputs) >= 90 and p99s and max(p99s) <= 2 and
                       (not adaptive or (s.max_settle_s is not None and s.max_settle_s <= 5)))
        s.verdict = _verdict(name, mine, s, adaptive)
        out.append(s)
    # FIFO against CoDel where the queue is longest: the phase with the fewest slots.
    fifo, codel = ({r.phase: r for r in rows if r.variant == v}
                   for v in ('bounded static', 'bounded codel'))
    tight = min((p for p in plist if p.capacity_phase), key=lambda p: p.capacity).name
    f, c = fifo[tight], codel[tight]
    for s in out:
        if s.variant == 'bounded codel':
            s.verdict += (' At %s, where the queue was longest, CoDel served %.0f %% of '
                          'capacity against FIFO\'s %.0f %%: %s' % (
                              tight, c.goodput_pct, f.goodput_pct,
                              'FIFO served the oldest requests, whose clients had left by '
                              'the time they were answered' if c.goodput_pct >
                              f.goodput_pct + 5 else 'no clear difference here'))
    return out


def _verdict(name, mine, s, adaptive):
    cap = [r for r in mine if r.capacity_phase]
    worst_good = min(cap, key=lambda r: r.goodput_pct)
    worst_p99 = max(cap, key=lambda r: r.steady_p99_x or 0)
    by = {r.phase: r for r in mine}
    if s.holds:
        head = ('%s: held it in every capacity phase (goodput >= %.1f %% of capacity, admitted '
                'p99 once the phase was half over <= %.1fx unloaded%s)' % (
                    name, s.min_goodput_pct, s.max_p99_x,
                    ', settled within %.1f s of each step' % s.max_settle_s
                    if adaptive else ''))
    else:
        misses = []
        if worst_good.goodput_pct < 90:
            # One decimal: a miss by a fraction must not print as the threshold itself.
            misses.append('at %s it served %.1f %% of capacity' % (
                worst_good.phase, worst_good.goodput_pct))
        if (worst_p99.steady_p99_x or 0) > 2:
            misses.append('at %s admitted p99 was %.1fx unloaded (limit %s for a Little\'s-law '
                          '%d)' % (worst_p99.phase, worst_p99.steady_p99_x,
                                   report.n0(worst_p99.mean_limit), worst_p99.ideal_limit))
        if adaptive and (s.max_settle_s is None or s.max_settle_s > 5):
            slow = [r for r in cap if r.settle_s is None or r.settle_s > 5]
            misses.append('its limit had not settled 5 s after the step to %s' % (
                slow[0].phase if slow else '?'))
        head = '%s: missed: %s' % (name, '; '.join(misses))
    tails = []
    why = _why(name, mine)
    if why:
        tails.append(why)
    slow = by.get('calls take 2x')
    if slow and slow.final_limit is not None and adaptive:
        # Where the limit went, not its mean: a limit still falling at the end of the phase
        # has a mean that looks right.
        first, final = slow.first_limit, slow.final_limit
        tails.append('when calls took twice as long its limit went from %s to %s for a right '
                     'limit of %d%s' % (
                         report.n0(first), report.n0(final), slow.ideal_limit,
                         ' (it read a slow dependency as its own overload)'
                         if final < 0.75 * slow.ideal_limit and final < first else ''))
    cpu = by.get('cpu')
    if cpu and cpu.p99_x is not None:
        tails.append('on CPU work (right limit %d) p99 was %.1fx unloaded' % (
            cpu.ideal_limit, cpu.p99_x))
    return head + ('; ' + '; '.join(tails) if tails else '') + '.'


def _why(name, mine):
    """What in the algorithm explains a miss, from the figures."""
    cap = [r for r in mine if r.capacity_phase]
    high = [r for r in cap if (r.mean_limit or 0) > 1.5 * r.ideal_limit]
    # Creep: the limit ends a phase well above the right one, and still rising.
    creep = [r for r in cap if (r.final_limit or 0) > 1.5 * r.ideal_limit and
             (r.final_limit or 0) > (r.middle_limit or 0)]
    low = [r for r in cap if (r.mean_limit or 0) < 0.8 * r.ideal_limit]
    if 'aimd' in name and high:
        return ('AIMD backs off only on a drop, and nothing dropped: a client that gives up at '
                'its deadline (%g s) is no drop, and no call took the 5 s aimd_timeout_ms, so '
                'its limit climbed by 1 per window to %s (Netflix concurrency-limits #137)' % (
                    DEADLINE_S, report.n0(max(r.mean_limit for r in cap))))
    if 'gradient2' in name and (creep or low):
        parts = []
        if low:
            parts.append('it grows by at most queue x smoothing (4 x 0.2) per update, so at %s '
                         'it reached a mean of %s for %d' % (
                             low[0].phase, report.n0(low[0].mean_limit),
                             low[0].ideal_limit))
        if creep:
            parts.append('at %s it ended at %s for %d, still rising: under steady overload its '
                         'long RTT catches up with the short one and the limit creeps up '
                         '(Netflix PR #134)' % (creep[0].phase,
                                               report.n0(creep[0].final_limit),
                                               creep[0].ideal_limit))
        return '; '.join(parts)
    return ''


def _plots(out, runs, plist):
    """The limit over time against the ideal, and goodput against capacity, per mode."""
    files = {}
    for name, begun, windows, results, series in runs:
        slug = name.replace(' ', '-')
        path = os.path.join(out, 'adaptive-%s.csv' % slug)
        ok = {}
        for res in (r for pair in results for r in pair):
            for i, sec in enumerate(res.timeline):
                t = int(res.started_at - begun + i)
                ok[t] = ok.get(t, 0) + sec[0]
        with open(path, 'w') as f:
            f.write('t,limit,ideal,goodput,capacity\n')
            for r in series:
                t = r['t'] - begun
                if t < 0:
                    continue
                p = next((p for p, (a, b) in zip(plist, windows) if a <= r['t'] < b), None)
                f.write('%.2f,%s,%s,%s,%s\n' % (
                    t, r.get('limit') or '', p.ideal if p else '',
                    ok.get(int(t), '') if p else '', p.capacity if p else ''))
        files[name] = os.path.basename(path)
    pngs = []
    for mode in ('coroutine', 'bounded'):
        names = [n for n in files if n.startswith(mode)]
        for what, column, ylabel, ref in (
                ('limit', 'limit', 'requests admitted at once', 'ideal'),
                ('goodput', 'goodput', 'answers within the deadline per second', 'capacity')):
            curves = ["'%s' using 't':'%s' with steps lw 2 dt 2 lc rgb 'black' title \"%s\"" % (
                files[names[0]], ref,
                "Little's law (capacity x service time)" if ref == 'ideal' else 'capacity')]
            curves += ["'%s' using 't':'%s' with steps lw 2 lc rgb '%s' title '%s'" % (
                files[n], column, report.color(n), n) for n in names]
            pngs.append(_gnuplot(out, 'adaptive-%s-%s' % (what, mode),
                                 '%s: %s' % (mode, ylabel), ylabel, curves, plist, windows,
                                 log=what == 'limit'))
    return pngs


def _gnuplot(out, name, title, ylabel, curves, plist, windows, log=False):
    begun = windows[0][0]
    extra = []
    for i, (p, (a, _)) in enumerate(zip(plist, windows)):
        extra.append("set arrow %d from %.2f, graph 0 to %.2f, graph 1 nohead dt 3 lc rgb "
                     "'#555555'" % (i + 1, a - begun, a - begun))
        extra.append("set label %d '%s' at %.2f, graph %.2f" % (
            i + 1, p.name, a - begun + 0.1, 0.97 - 0.05 * (i % 2)))
    return report.gnuplot(out, name, title, 'seconds', ylabel, extra, curves, log=log)


PHASE_COLUMNS = records.check_columns(PhaseRow, [
    ('variant', 'variant', report.text),
    ('goodput % of capacity', 'goodput_pct', report.n0),
    ('goodput/s', 'goodput_per_s', report.n0),
    ('admitted p99', 'p99_us', report.ms),
    ('p99 x unloaded', 'p99_x', report.n1),
    ('2nd half p99 x', 'steady_p99_x', report.n1),
    ('mean limit', 'mean_limit', report.n0),
    ("Little's law", 'ideal_limit', report.n0),
    ('settled after s', 'settle_s', report.n1),
    ('503s', 'rejected_503', report.n0),
    ('timeouts', 'timeouts', report.n0),
])

SUMMARY_COLUMNS = records.check_columns(SummaryRow, [
    ('variant', 'variant', report.text),
    ('min goodput %', 'min_goodput_pct', report.n1),
    ('max 2nd half p99 x', 'max_p99_x', report.n1),
    ('max settle s', 'max_settle_s', report.n1),
    ('holds', 'holds', lambda v: 'yes' if v else 'no'),
])


def columns_for(path):
    return SUMMARY_COLUMNS if path == 'summary' else PHASE_COLUMNS
