"""loadtest/run criticality: what to shed under overload, not only how much.

Critical clients ask at a quarter of the downstream's capacity; then sheddable clients flood
the same server at three times its capacity. Each mode that has a limit (bounded's workers and
queue, static; coroutine's vegas limit, adaptive) runs twice: with the shipped shares (a
SHEDDABLE request may fill half of the limit, so the places above it stay free for the
critical) and with every share at 100 %, as if no request said how much it mattered. The
report compares the critical clients' goodput under the flood with their goodput alone."""

import dataclasses

from . import lab
from . import records
from . import report

SERVICE_MS = 100          # each /work/io call holds a downstream slot this long
DEADLINE_S = 1.0
HEADER = 'X-Stampede-Criticality'
HOLDS_PCT = 95            # critical goodput under the flood, of its goodput alone

MODES = [
    # (mode, what its limit is, overrides): the model's own pool, and an adaptive limit
    ('bounded', 'static: the model\'s pool', {}),
    ('coroutine', 'adaptive: vegas', {'limiter.algorithm': 'vegas'}),
]


@dataclasses.dataclass
class Rates:
    """The model's downstream capacity (requests/s), and what each class of clients offers."""
    capacity: float

    @classmethod
    def of(cls, model):
        return cls(model['downstream.capacity'] * 1000.0 / SERVICE_MS)

    @property
    def critical(self):
        return self.capacity / 4

    @property
    def sheddable(self):
        return self.capacity * 3
NO_CRITICALITY = {'limiter.sheddable_share': 100, 'limiter.sheddable_plus_share': 100}


@dataclasses.dataclass(kw_only=True)
class CriticalityRow(records.Row):
    """One class of clients in one phase of one variant. Rates per second."""
    path: str                  # the mode's section of the report
    variant: str               # 'with criticality' or 'every share 100 %'
    phase: str                 # 'critical alone' or 'sheddable flood'
    criticality: str
    offered_per_s: float
    goodput_per_s: float
    goodput_pct_alone: object  # the critical's: of their goodput alone
    rejected_503: int          # as the clients saw them
    refused: float             # turned away at admission, as the server counted them
    timeouts: int


@dataclasses.dataclass(kw_only=True)
class CriticalitySummary(records.Row):
    """One mode's verdict."""
    path: str
    verdict: str
    critical_alone_per_s: float
    critical_with_pct: float
    critical_without_pct: float
    sheddable_with_per_s: float
    shed: float                # 503 shed, with criticality (the server's count)
    holds: bool


def _config(model, mode, extra):
    overrides = {'mode': mode, 'reload.watch': False}
    overrides.update(extra)
    return model.config_text(overrides, 'criticality: the mode, its limit, and (without '
                             'criticality) every share at 100 %')


def _clients(run, args, level, rate, seconds):
    return run.open_loop(args.openloop_binary, '/work/io?ms=%d' % SERVICE_MS, rate, seconds,
                         4000, timeout_s=DEADLINE_S,
                         extra=['--header', '%s: %s' % (HEADER, level)])


def _refused(run, mode, level):
    return run.server.metrics().value('stampede_admissions_total', mode=mode, criticality=level,
                                      result='refused')


def run_variant(args, out, progress, rates, mode, extra, variant, seconds, alone_first):
    """A fresh server: the critical clients alone (if asked), then the flood with them.
    Returns the rows, the critical goodput alone (if measured) and the 503 shed counted."""
    rows, alone = [], None
    slug = '%s-%s' % (mode, 'with' if variant == 'with criticality' else 'without')

    def row(phase, level, rate, result, refused_before):
        return CriticalityRow(
            scenario='criticality', mode=mode, path=mode, variant=variant, phase=phase,
            criticality=level, offered_per_s=rate, goodput_per_s=result.ok_count / seconds,
            goodput_pct_alone=None, rejected_503=result.count(503),
            refused=_refused(run, mode, level) - refused_before, timeouts=result.timeouts)

    with lab.Run(args.binary, _config(args.model, mode, extra), out,
                 'criticality-' + slug) as run:
        if alone_first:
            progress.show('[criticality %s] critical clients alone' % mode, force=True)
            run.mark('critical clients alone')
            r = _clients(run, args, 'CRITICAL', rates.critical, seconds).result()
            alone = r.ok_count / seconds
            rows.append(row('critical alone', 'CRITICAL', rates.critical, r, 0))
        progress.show('[criticality %s, %s] sheddable flood' % (mode, variant), force=True)
        run.mark('sheddable flood: %d/s' % rates.sheddable)
        before = {level: _refused(run, mode, level) for level in ('CRITICAL', 'SHEDDABLE')}
        flood = _clients(run, args, 'SHEDDABLE', rates.sheddable, seconds)
        critical = _clients(run, args, 'CRITICAL', rates.critical, seconds)
        rc, rs = critical.result(), flood.result()
        rows.append(row('sheddable flood', 'CRITICAL', rates.critical, rc, before['CRITICAL']))
        rows.append(row('sheddable flood', 'SHEDDABLE', rates.sheddable, rs, before['SHEDDABLE']))
        shed = run.server.metrics().value('stampede_rejected_total', mode=mode, reason='shed')
    return rows, alone, shed


def criticality(args, out, progress):
    seconds = 3 if args.quick else 8
    rates = Rates.of(args.model)
    rows, summaries = [], []
    for mode, limit, extra in MODES:
        if mode == 'bounded':
            limit += ', %d workers and a queue of %d' % (args.model['bounded.workers'],
                                                        args.model['bounded.queue_capacity'])
        with_rows, alone, shed = run_variant(args, out, progress, rates, mode, extra,
                                             'with criticality', seconds, True)
        without_rows, _, _ = run_variant(args, out, progress, rates, mode,
                                         dict(extra, **NO_CRITICALITY), 'every share 100 %',
                                         seconds, False)
        for r in with_rows + without_rows:
            if r.criticality == 'CRITICAL' and alone:
                r.goodput_pct_alone = 100.0 * r.goodput_per_s / alone
        crit_with = next(r for r in with_rows if r.phase == 'sheddable flood' and
                         r.criticality == 'CRITICAL')
        crit_without = next(r for r in without_rows if r.criticality == 'CRITICAL')
        shed_with = next(r for r in with_rows if r.criticality == 'SHEDDABLE')
        kept, kept_without = crit_with.goodput_pct_alone or 0, crit_without.goodput_pct_alone or 0
        holds = kept >= HOLDS_PCT
        verdict = (
            '%s (%s): under a sheddable flood of %s/s the critical clients kept %.0f %% of '
            'their goodput alone (%s/s of %s/s)%s; with every share at 100 %% they kept %.0f %%. '
            'The sheddable got %s/s, within their share of the limit (%s %%), and %s were shed: '
            'the places kept for the critical stay free even while the critical do not need '
            'them' % (
                mode, limit, report.n0(rates.sheddable), kept,
                report.n0(crit_with.goodput_per_s), report.n0(alone),
                '' if holds else ', below the %d %% they should keep' % HOLDS_PCT,
                kept_without, report.n0(shed_with.goodput_per_s),
                args.model['limiter.sheddable_share'], report.n0(shed)))
        summaries.append(CriticalitySummary(
            scenario='criticality', mode=mode, path='summary', verdict=verdict,
            critical_alone_per_s=alone, critical_with_pct=kept, critical_without_pct=kept_without,
            sheddable_with_per_s=shed_with.goodput_per_s, shed=shed, holds=holds))
        rows += with_rows + without_rows
    progress.done()
    out_rows = [r.as_dict() for r in summaries + rows]
    out_rows[0]['context'] = (
        'Critical clients at %s/s (a quarter of the downstream\'s %s/s), alone, then with '
        'sheddable clients at %s/s; each client gives up after %g s. "with criticality": the '
        'shipped shares (SHEDDABLE may fill %s %% of the limit); "every share 100 %%": no '
        'level kept apart.' % (report.n0(rates.critical), report.n0(rates.capacity),
                               report.n0(rates.sheddable), DEADLINE_S,
                               args.model['limiter.sheddable_share']))
    return out_rows


ROW_COLUMNS = records.check_columns(CriticalityRow, [
    ('variant', 'variant', report.text),
    ('phase', 'phase', report.text),
    ('criticality', 'criticality', report.text),
    ('offered/s', 'offered_per_s', report.n0),
    ('goodput/s', 'goodput_per_s', report.n0),
    ('% of alone', 'goodput_pct_alone', report.n0),
    ('503s', 'rejected_503', report.n0),
    ('refused at admission', 'refused', report.n0),
    ('timeouts', 'timeouts', report.n0),
])

SUMMARY_COLUMNS = records.check_columns(CriticalitySummary, [
    ('mode', 'mode', report.text),
    ('critical alone/s', 'critical_alone_per_s', report.n0),
    ('critical kept, with %', 'critical_with_pct', report.n0),
    ('critical kept, without %', 'critical_without_pct', report.n0),
    ('sheddable goodput/s, with', 'sheddable_with_per_s', report.n0),
    ('503 shed, with', 'shed', report.n0),
    ('holds', 'holds', lambda v: 'yes' if v else 'no'),
])


def columns_for(path):
    return SUMMARY_COLUMNS if path == 'summary' else ROW_COLUMNS
