"""loadtest/run fleet: the cascade and the metastable experiments, each variant on a fresh
fleet (fleet.py), with verdicts in words, tables, series (CSV) and plots.

- cascade: a spike against unbounded replicas (thread_per_request, coroutine), then bounded
  ones. An unbounded replica holds memory for every request it takes until the OOM killer
  ends it; HAProxy moves its load to the survivors, which die in turn.
- metastable: steady load at 70 % of the downstream's capacity, and a trigger: the
  downstream's capacity cut to a quarter, live, for a few seconds. With retries at every
  layer the load the trigger amplified outlives it; each fix must bring goodput back."""

import dataclasses
import os
import time

from . import records
from . import report
from .fleet import (CAPACITY, DEADLINE_MS, METASTABLE, REPLICAS, SLOTS, STEADY, TRIGGER_SLOTS,
                   Fleet, Variant)

CASCADE_MODES = ['thread_per_request', 'coroutine', 'bounded']
CASCADE_REQUEST_KB = 1024


@dataclasses.dataclass(kw_only=True)
class FleetRow(records.Row):
    """What every fleet row has: the section (`path`), the variant, what the run showed."""
    path: str
    variant: str
    replica_deaths: int
    goodput_before_per_s: float
    goodput_after_per_s: float
    recovered_after_s: object   # None: never
    amplification: object       # downstream calls per request sent
    sent: int
    ok: int
    timeouts: int
    rejected_503: int
    deaths_t: list              # when each replica died, on the fleet's clock
    verdict: str = ''
    context: str = ''
    plots: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(kw_only=True)
class MetastableRow(FleetRow):
    """One retry policy through the trigger: did goodput come back once the trigger ended?"""
    what: str
    outcome: str                # recovered, recovered late, metastable, degraded, not yet
    amplification_trigger: float
    client_retries: int
    client_throttled: int
    ds_queue_peak: float
    ds_queue_after: float
    ds_rejected: int
    ds_deadline_skips: int
    throttled_after_per_s: float
    wasted_s: float
    trigger_s: list             # [start, end] on the fleet's clock
    watched_s: int


@dataclasses.dataclass(kw_only=True)
class CascadeRow(FleetRow):
    """One mode's replicas through the spike: did they die one after another?"""
    memory_note: str
    first_death_s: object
    gaps_s: list
    fleet_down_s: object
    goodput_per_s: float
    lost: int
    spike_s: list               # [start, end] on the fleet's clock


class Params:
    """Durations (s) and rates; --quick shrinks the durations to a smoke run."""

    def __init__(self, quick):
        self.quick = quick
        self.warm_s = 2 if quick else 3
        self.before_s = 3 if quick else 6
        self.trigger_s = 2 if quick else 3
        self.after_s = 6 if quick else 30
        self.spike_s = 5 if quick else 10
        self.spike_rate = 700  # requests/s: 1.75× the downstream's capacity
        self.cascade_steady = 100
        self.after_cascade_s = 2 if quick else 4


def _mean(values):
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def _recovery(goodput, before_secs, after_secs, since):
    """(before, after, recovered_after_s, stayed_down): goodput per second before the
    trigger; over the last 5 s; seconds from `since` until 3 seconds in a row are back at
    ≥ 90 % of before (None if never); whether every second after stayed below 30 %."""
    before = _mean(goodput[t] for t in before_secs)
    after = _mean(goodput[t] for t in after_secs[-5:])
    recovered = None
    for i, t in enumerate(after_secs[:-2]):
        if all(goodput[u] >= 0.9 * before for u in after_secs[i:i + 3]):
            recovered = round(max(0.0, t - since), 1)
            break
    stayed_down = bool(after_secs) and all(goodput[t] < 0.3 * before for t in after_secs)
    return before, after, recovered, stayed_down


def _wait(gens, fleet, progress, label, total, events=()):
    """Waits for the clients, running `events` [(t, fn)] at their times on the fleet's clock."""
    pending = sorted(events, key=lambda e: e[0])
    while any(g.proc.poll() is None for g in gens):
        while pending and fleet.now() >= pending[0][0]:
            pending.pop(0)[1]()
        row = fleet.ds_sampler.latest()
        progress.show('[%s] %5.1f/%.0fs  downstream queue=%s  replica deaths=%d' % (
            label, fleet.now(), total, report.n0(row.get('tasks_queued')),
            len(fleet.deaths())))
        time.sleep(0.1)
    for _, fn in pending:
        fn()
    results = []
    for g in gens:
        r = g.result()
        r.started_at = g.started_at
        results.append(r)
    return results


def metastable(args, out, progress):
    p = Params(args.quick)
    rate = STEADY * CAPACITY
    rows = [_metastable_run(args, p, v, rate, out, progress) for v in METASTABLE]
    plots = _metastable_plots(out, rows, rate)
    for r in rows:
        r.plots = plots
    rows[0].context = '\n'.join(
        ['%d requests/s offered through HAProxy to %d coroutine replicas; the downstream '
         'serves %d/s (%d slots × %d ms) and is cut to %d slots for %g s; clients give up '
         'after %g s per attempt. The variants:' % (
             rate, REPLICAS, CAPACITY, SLOTS, 1000 * SLOTS // CAPACITY, TRIGGER_SLOTS,
             p.trigger_s, DEADLINE_MS / 1000.0)] +
        ['  %-9s %s' % (v.name, v.what) for v in METASTABLE])
    return rows


def _metastable_run(args, p, v, rate, out, progress):
    label = 'metastable %s' % v.name
    progress.show('[%s] starting' % label, force=True)
    fleet = Fleet(args, out, 'metastable-%s' % v.name, v, 'coroutine')
    try:
        total = p.warm_s + p.before_s + p.trigger_s + p.after_s
        gen = fleet.clients(args, rate, total, v)
        trigger = gen.started_at + p.warm_s + p.before_s
        trigger_end = trigger + p.trigger_s
        res, = _wait([gen], fleet, progress, label, total, [
            (trigger, lambda: fleet.set_downstream_slots(args.model, TRIGGER_SLOTS, v)),
            (trigger_end, lambda: fleet.set_downstream_slots(args.model, SLOTS, v))])
    finally:
        fleet.close()
    t_end = gen.started_at + total
    s = fleet.series([res], t_end)
    client, calls = s['client'], s['calls']
    goodput = [c[0] for c in client]
    secs = list(range(int(gen.started_at + 0.5), int(t_end)))
    after_secs = list(range(int(trigger_end) + 1, int(t_end)))
    before, after, recovered, stayed_down = _recovery(
        goodput, range(int(gen.started_at + p.warm_s), int(trigger)), after_secs, trigger_end)
    if recovered is not None:
        outcome = 'recovered' if recovered <= 10 else 'recovered late'
    elif len(after_secs) < 10:
        outcome = 'not yet'  # a --quick run watches too little to call it metastable
    else:
        outcome = 'metastable' if stayed_down else 'degraded'
    sent = res.sent or 0
    in_trigger = range(int(trigger), int(trigger_end) + 1)
    row = MetastableRow(
        scenario='fleet', mode='coroutine',
        path='metastable: %d requests/s (%.0f %% of the downstream\'s %d/s), its capacity '
             'cut to a quarter for %g s' % (rate, STEADY * 100, CAPACITY, p.trigger_s),
        variant=v.name, what=v.what, outcome=outcome,
        replica_deaths=len(fleet.deaths()),
        goodput_before_per_s=round(before, 1),
        goodput_after_per_s=round(after, 1),
        recovered_after_s=recovered,
        amplification=round(sum(calls[t] for t in secs) / sent, 2) if sent else None,
        amplification_trigger=round(
            sum(calls[t] for t in in_trigger) / (rate * len(in_trigger)), 2),
        client_retries=res.retries, client_throttled=res.throttled,
        sent=sent, ok=res.ok_count, timeouts=res.timeouts,
        rejected_503=res.count(503),
        ds_queue_peak=max(s['queue']),
        ds_queue_after=round(_mean(s['queue'][t] for t in after_secs), 1),
        ds_rejected=round(sum(s['ds_rejected'])),
        ds_deadline_skips=round(sum(s['ds_skipped'])),
        throttled_after_per_s=round(_mean(client[t][7] for t in after_secs), 1),
        wasted_s=round(sum(s['wasted']), 1),
        trigger_s=[round(trigger, 2), round(trigger_end, 2)],
        watched_s=len(after_secs),
        deaths_t=[d['t'] for d in fleet.deaths()])
    row.verdict = _metastable_verdict(row)
    with open(os.path.join(out, 'metastable-%s.csv' % v.name), 'w') as f:
        f.write('t,goodput,failed,retries,throttled,downstream_calls,amplification,'
                'downstream_queue\n')
        for t in secs:
            c = client[t]
            f.write('%d,%d,%d,%d,%d,%d,%.2f,%d\n' % (t, c[0], sum(c[1:6]), c[6], c[7],
                                                     calls[t], calls[t] / rate, s['queue'][t]))
    return row


def _metastable_verdict(r):
    before = report.n0(r.goodput_before_per_s)
    ninety = report.n0(0.9 * r.goodput_before_per_s)
    words = {
        'recovered': 'recovered: goodput back to %s/s (90 %% of %s/s) %.1f s after the '
                     'trigger ended' % (ninety, before, r.recovered_after_s or 0),
        'recovered late': 'recovered late: goodput back to %s/s (90 %% of %s/s) only %.1f s '
                          'after the trigger ended' % (ninety, before,
                                                       r.recovered_after_s or 0),
        'metastable': 'stayed down after the trigger ended (metastable): goodput %s/s at the '
                      'end against %s/s before' % (report.n0(r.goodput_after_per_s), before),
        'not yet': 'not back to 90 %% of %s/s within the %d s this quick run watched after the '
                   'trigger (the full run watches 30 s)' % (before, r.watched_s),
        'degraded': 'neither recovered nor stayed down: goodput %s/s at the end against %s/s '
                    'before' % (report.n0(r.goodput_after_per_s), before),
    }[r.outcome]
    parts = [words, '%.2f downstream calls per client request (%.2f while triggered)' % (
        r.amplification or 0, r.amplification_trigger)]
    cheap = r.ds_rejected + r.ds_deadline_skips
    if cheap:
        parts.append('the downstream turned %s calls away at once (full queue, or the caller\'s '
                     'deadline already passed), at no cost in work' % report.n0(cheap))
    if r.wasted_s >= 0.5:
        parts.append('%s s of downstream work done for callers that had gone' %
                     report.n1(r.wasted_s))
    if r.outcome != 'recovered':
        # What held goodput down after the trigger: a downstream still busy with a queue, or
        # clients refusing their own requests while the downstream sat idle.
        if r.ds_queue_after >= 10:
            parts.append('after the trigger the downstream\'s queue held %s requests on average'
                         ' (peak %s): retries kept it full of work nobody waited for' % (
                             report.n0(r.ds_queue_after), report.n0(r.ds_queue_peak)))
        if r.throttled_after_per_s >= 1:
            parts.append('the clients\' throttle refused %s requests/s of its own after the '
                         'trigger: it remembers the failures of its last 10 s, so it reopens '
                         'slowly' % report.n0(r.throttled_after_per_s))
    return '%s: %s.' % (r.variant, '; '.join(parts))


def _gnuplot(out, name, title, ylabel, curves, shade, shade_label, deaths=()):
    extra = ["set object 1 rect from %.2f, graph 0 to %.2f, graph 1 behind "
             "fc rgb '#ffe4e1' fs solid 0.6 noborder" % tuple(shade),
             "set label 1 '%s' at %.2f, graph 0.95" % (shade_label, shade[0] + 0.1)]
    for n, (t, who) in enumerate(deaths):
        extra.append("set arrow %d from %.2f, graph 0 to %.2f, graph 1 nohead dt 3 lc rgb "
                     "'%s'" % (n + 10, t, t, report.color(who)))
    if deaths:  # the dotted lines, in the key
        curves = curves + ["NaN with lines dt 3 lc rgb 'black' title 'a replica died'"]
    return report.gnuplot(out, name, title, 'seconds since the fleet started', ylabel, extra,
                          curves)


def _curves(prefix, rows, column):
    return ["'%s-%s.csv' using 't':'%s' with steps lw 2 lc rgb '%s' title '%s'"
            % (prefix, r.variant, column, report.color(r.variant), r.variant)
            for r in rows]


def _metastable_plots(out, rows, rate):
    deaths = [(t, r.variant) for r in rows for t in r.deaths_t]
    return [_gnuplot(out, 'metastable-' + name, title, ylabel,
                     _curves('metastable', rows, column), rows[0].trigger_s, 'trigger',
                     deaths)
            for name, column, ylabel, title in [
                ('goodput', 'goodput', 'answers within the deadline per second',
                 'goodput per variant (%d requests/s offered)' % rate),
                ('amplification', 'amplification', 'downstream calls per client request',
                 'amplification: calls reaching the downstream per request offered'),
                ('queue', 'downstream_queue', 'requests queued at the downstream',
                 "the downstream's queue")]]


def cascade(args, out, progress):
    p = Params(args.quick)
    rows = [_cascade_run(args, p, mode, out, progress) for mode in CASCADE_MODES]
    deaths = [(t, r.variant) for r in rows for t in r.deaths_t]
    png = _gnuplot(out, 'cascade-goodput', 'goodput through HAProxy: %d → %d requests/s for '
                   '%d s' % (p.cascade_steady, p.spike_rate, p.spike_s),
                   'answers within the deadline per second', _curves('cascade', rows, 'goodput'),
                   rows[0].spike_s, 'spike', deaths)
    for r in rows:
        r.plots = [png]
    rows[0].context = (
        '%d replicas behind HAProxy (leastconn, health checks), each in %s, holding %d KiB '
        'per request and calling a downstream of %d/s; a dead replica is restarted after 1, '
        '2, 4, 8 s (a crash-loop back-off); clients give up after %g s.' % (
            REPLICAS, rows[0].memory_note, CASCADE_REQUEST_KB, CAPACITY,
            DEADLINE_MS / 1000.0))
    return rows


def _cascade_run(args, p, mode, out, progress):
    label = 'cascade %s' % mode
    progress.show('[%s] starting' % label, force=True)
    v = Variant(mode, 'no retries anywhere')
    fleet = Fleet(args, out, 'cascade-%s' % mode, v, mode, memory_limit=args.memory_limit,
                  request_kb=CASCADE_REQUEST_KB, replica_timeout_ms=1000, pool=16)
    try:
        total = p.warm_s + p.spike_s + p.after_cascade_s
        steady = fleet.clients(args, p.cascade_steady, total, v, connections=200)
        time.sleep(p.warm_s)
        spike = (fleet.now(), fleet.now() + p.spike_s)
        burst = fleet.clients(args, p.spike_rate - p.cascade_steady, p.spike_s, v,
                              connections=3000)
        results = _wait([burst, steady], fleet, progress, label, total)
    finally:
        fleet.close()
    deaths = sorted(fleet.deaths(), key=lambda d: d['t'])
    times = [d['t'] for d in deaths]
    t_end = steady.started_at + total
    s = fleet.series(results, t_end)
    client = s['client']
    goodput = [c[0] for c in client]
    secs = list(range(int(steady.started_at + 0.5), int(t_end)))
    before, after, recovered, _ = _recovery(
        goodput, range(int(steady.started_at) + 1, int(spike[0])),
        list(range(int(spike[1]) + 1, int(t_end))), spike[1])
    with open(os.path.join(out, 'cascade-%s.csv' % mode), 'w') as f:
        f.write('t,goodput,failed\n')
        for t in secs:
            f.write('%d,%d,%d\n' % (t, client[t][0], sum(client[t][1:6])))
    down_at = _fleet_down_at(deaths)
    sent = sum(r.sent or 0 for r in results)
    in_spike = range(int(spike[0]), int(spike[1]))
    row = CascadeRow(
        scenario='fleet', mode=mode,
        path='cascade: %d requests/s for %d s through HAProxy to %d replicas (%d KiB held '
             'per request)' % (p.spike_rate, p.spike_s, REPLICAS, CASCADE_REQUEST_KB),
        variant=mode, memory_note=fleet.memory_note,
        replica_deaths=len(deaths),
        first_death_s=round(times[0] - spike[0], 1) if times else None,
        gaps_s=[round(b - a, 2) for a, b in zip(times, times[1:])],
        fleet_down_s=None if down_at is None else round(down_at - spike[0], 1),
        goodput_before_per_s=round(before, 1), goodput_after_per_s=round(after, 1),
        recovered_after_s=recovered,
        amplification=round(sum(s['calls'][t] for t in secs) / sent, 2) if sent else None,
        sent=sent, ok=sum(r.ok_count for r in results),
        goodput_per_s=round(_mean(goodput[t] for t in in_spike), 1),
        timeouts=sum(r.timeouts for r in results), lost=sum(r.lost for r in results),
        rejected_503=sum(r.count(503) for r in results),
        spike_s=[round(spike[0], 2), round(spike[1], 2)],
        deaths_t=times)
    row.verdict = _cascade_verdict(row)
    return row


def _fleet_down_at(deaths):
    """The first moment every replica was down at once (dead, not yet answering again)."""
    spans = [(d['t'], d['t'] + (d['recovery_s'] if d['recovery_s'] is not None else 1e9),
              d['replica']) for d in deaths]
    for t, _, _ in sorted(spans):
        if len({r for a, b, r in spans if a <= t < b}) == REPLICAS:
            return t
    return None


def _cascade_verdict(r):
    if not r.replica_deaths:
        return '%s: no replica died; %s/s answered within the deadline through the spike, '\
               '%s turned away at once with 503.' % (
                   r.variant, report.n0(r.goodput_per_s), report.n0(r.rejected_503))
    gaps = ', '.join('%.1f' % g for g in r.gaps_s[:6]) or '-'
    down = ('the whole fleet was down %.1f s into the spike' % r.fleet_down_s
            if r.fleet_down_s is not None else 'never all down at once')
    return '%s: %d replica deaths (OOM kills), the first %.1f s into the spike, the next %s s '\
           'after the one before; %s; %s/s answered within the deadline through the spike, '\
           '%s requests lost in flight.' % (
               r.variant, r.replica_deaths, r.first_death_s, gaps, down,
               report.n0(r.goodput_per_s), report.n0(r.lost))


def fleet(args, out, progress):
    """Both experiments: the cascade, then metastability."""
    rows = cascade(args, out, progress) + metastable(args, out, progress)
    return [r.as_dict() for r in rows]


CASCADE_COLUMNS = records.check_columns(CascadeRow, [
    ('replicas', 'variant', report.text),
    ('deaths', 'replica_deaths', report.n0),
    ('first death s', 'first_death_s', report.n1),
    ('fleet down s', 'fleet_down_s', report.n1),
    ('goodput before/s', 'goodput_before_per_s', report.n0),
    ('goodput in spike/s', 'goodput_per_s', report.n0),
    ('goodput after/s', 'goodput_after_per_s', report.n0),
    ('503s', 'rejected_503', report.n0),
    ('timeouts', 'timeouts', report.n0),
    ('lost', 'lost', report.n0),
])

METASTABLE_COLUMNS = records.check_columns(MetastableRow, [
    ('variant', 'variant', report.text),
    ('outcome', 'outcome', report.text),
    ('goodput before/s', 'goodput_before_per_s', report.n0),
    ('goodput after/s', 'goodput_after_per_s', report.n0),
    ('recovered after s', 'recovered_after_s', report.n1),
    ('amplification', 'amplification', report.n2),
    ('ampl. in trigger', 'amplification_trigger', report.n2),
    ('ds queue peak', 'ds_queue_peak', report.n0),
    ('wasted s', 'wasted_s', report.n1),
    ('replica deaths', 'replica_deaths', report.n0),
])


def columns_for(path):
    return CASCADE_COLUMNS if path.startswith('cascade') else METASTABLE_COLUMNS
