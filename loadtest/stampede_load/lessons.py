"""One lesson at a time: `loadtest/run lesson NAME` runs one claim or interview trap of the
lesson as an experiment of under a minute, and prints, in this order, what to predict, where the
live page is (every server of the lesson takes the same admin port in turn, --admin-port), then
the verdict in words and the figure that proves it. `loadtest/run lesson --list` lists them.

A lesson runs the same code as the demo and the labs (a spike of two modes, or one lab's
variants), shortened to a smoke run's durations; its report is the same folder of tables."""

import dataclasses

from . import failure_labs
from . import lab
from . import records
from . import scenarios


@dataclasses.dataclass
class Lesson:
    name: str
    claim: str       # the lesson's claim, or the trap as people say it
    predict: str     # asked of the room before it runs
    watch: str       # which chart of the live page
    run: object      # (args, out, progress) -> (rows, verdict words, figure)


@dataclasses.dataclass(kw_only=True)
class LessonRow(records.Row):
    """The lesson's last row: its verdict in words and the figure that proves it."""
    lesson: str
    claim: str
    predict: str
    kind: str        # which caveat the report ends with: clients or labs
    verdict: str
    figure: str
    path: str


def _spike(modes, ok_mode, bad_mode):
    """A short spike on /work/io for two modes: the one that holds and the one that fails."""
    def run(args, out, progress):
        args.modes, args.endpoints = modes, ['io']
        # A smoke run's durations, but a spike long enough for the kills to show in goodput.
        args.params = scenarios.Params(quick=True)
        args.params.spike_s = 8
        rows = scenarios.spike(args, out, progress)
        ok = next(r for r in rows if r['mode'] == scenarios.mode_label(ok_mode))
        bad = next(r for r in rows if r['mode'] == scenarios.mode_label(bad_mode))
        cap = ok['capacity_per_s']
        died = ('was OOM-killed %d times' % bad['oom_kills'] if bad['oom_kills']
                else 'stayed up')
        words = ('%s %s and served %.0f/s within the deadline; %s served %.0f/s of the '
                 'downstream\'s %.0f/s and turned %s away at once with 503.'
                 % (bad['mode'], died, bad['goodput_per_s'], ok['mode'], ok['goodput_per_s'],
                    cap, '{:,}'.format(ok['rejected_503'])))
        figure = 'goodput %s %.0f/s against %s %.0f/s; OOM kills %d against %d' % (
            ok['mode'], ok['goodput_per_s'], bad['mode'], bad['goodput_per_s'],
            ok['oom_kills'], bad['oom_kills'])
        return rows, words, figure
    run.kind = 'clients'  # which caveat the report ends with
    return run


def _lab(name, words=None):
    """One lab's variants, as `loadtest/run labs --lab NAME` runs them, at smoke durations.
    `words(rows)`: the lesson's own (verdict, figure), where the lab's say something else."""
    def run(args, out, progress):
        args.lab, args.quick = name, True
        rows = failure_labs.labs(args, out, progress)
        summary = rows[0]
        if words:
            return (rows,) + words(rows)
        return rows, summary['verdict'], '%s; %s' % (summary['symptom'], summary['fixed'])
    run.kind = 'labs'
    return run


def _owner_words(rows):
    by = {(r.get('mode'), r.get('variant')): r for r in rows if 'per_s' in r}
    owner_lost = sum(r['lost'] for (m, v), r in by.items() if v == 'owner')
    racy = max((r for (m, v), r in by.items() if v == 'racy'), key=lambda r: r['lost_pct'])
    cost = {v: by[('thread_per_request', v)]['per_s'] for v in ('mutex', 'atomic', 'owner')}
    verdict = ('the owner task lost %d increments in every mode, with no lock in any request: '
               'the count is touched by one task only, and the channel orders the messages. '
               'The racy counter lost %.0f %% in %s. Communication has its price: in '
               'thread_per_request the owner took %s increments/s, against %s for a mutex and '
               '%s for an atomic, each increment a message and a wake-up.'
               % (owner_lost, racy['lost_pct'], racy['mode'], '{:,.0f}'.format(cost['owner']),
                  '{:,.0f}'.format(cost['mutex']), '{:,.0f}'.format(cost['atomic'])))
    figure = 'owner: %d lost, %s/s; mutex %s/s; atomic %s/s' % (
        owner_lost, '{:,.0f}'.format(cost['owner']), '{:,.0f}'.format(cost['mutex']),
        '{:,.0f}'.format(cost['atomic']))
    return verdict, figure


LESSONS = [
    Lesson('runaway', 'Unbounded concurrency takes a service down; a bound keeps it serving.',
           'A spike of 2,000 clients with a 2 s deadline, against a downstream that serves 320/s. '
           'Which serves more: a thread per request, or a pool of 32 workers that turns the rest '
           'away?',
           'the threads against tasks, RSS against the limit (a red marker is an OOM kill), and '
           'requests per second by status',
           _spike(['thread_per_request', 'bounded'], 'bounded', 'thread_per_request')),
    Lesson('cheap-tasks', '"Goroutines are cheap, so I don\'t need a limit."',
           'Coroutine tasks cost a few hundred bytes and hold no thread. Does a task per request '
           'survive the spike that kills a thread per request?',
           'tasks climbing while OS threads stay flat, and RSS against the limit',
           _spike(['coroutine', 'coroutine:max_tasks=64'], 'coroutine:max_tasks=64', 'coroutine')),
    Lesson('cleanup-storm', 'The incident: one unbounded cleanup per cache eviction took the '
           'CPU from every request.',
           'A full cache; every put evicts an entry whose cleanup is started fire-and-forget. '
           '64 clients put as fast as they can. How many cleanups run at once, and what '
           'happens to /healthz, which does nothing?',
           'threads and tasks climbing, CPU, and the labs chart: cleanups under way',
           _lab('cache')),
    Lesson('lost-update', '"It passed its test, so it is thread-safe."',
           'A counter incremented with a read, a pause, a write. With one client it is exact. '
           'How many of the increments survive 16 clients? And on one thread (coroutine mode)?',
           'the labs chart: lost updates',
           _lab('counter')),
    Lesson('share-by-communicating',
           '"Don\'t communicate by sharing memory; share memory by communicating."',
           'The same counter, owned by one task that takes increments through a channel: no '
           'lock, and nothing shared but the channel. Does it lose updates? Is it cheaper or '
           'dearer than a mutex and an atomic?',
           'the labs chart: lost updates (owner stays at 0)',
           _lab('counter', _owner_words)),
    Lesson('race-free', '"Race-free code is correct code."',
           'Three ways to sell the last seats: no synchronisation, each step atomic, one lock '
           'around check and take. ThreadSanitizer flags only the first. Which oversell?',
           'the labs chart: seats oversold',
           _lab('reserve')),
    Lesson('global-lock', '"This mutex makes my code concurrent."',
           'Every request holds one server-wide lock across its 20 ms of work. 16 clients, a '
           'thread or a task each: how many requests a second, and where are the others?',
           'requests per second by status; threads and tasks (parked on the lock)',
           _lab('lock')),
    Lesson('parallelism', '"Concurrency is not parallelism."',
           '4 CPU-bound children of 50 ms: one after another, interleaved on one thread, and '
           'handed to the mode. How long does each take, in each mode, and what is the best '
           'that 2 cores allow?',
           'CPU: more than one core busy only where the children run in parallel',
           _lab('cpu_fanout')),
    Lesson('leak', 'A task that outlives its request is a leak, and it takes the server with it.',
           'Each request starts a helper and gives up on it after 50 ms; the helper then waits '
           'forever to hand over its result. What runs out first, in each mode?',
           'the labs chart: leaked helpers; tasks and threads',
           _lab('leak')),
    Lesson('deadlock', 'Two locks taken in different orders deadlock only under load.',
           'Transfers lock the source account, then the destination. One client never deadlocks. '
           'With 8, what happens to the whole server, and what tells you why?',
           'requests per second by status, and the labs chart: deadlocks found',
           _lab('transfer')),
    Lesson('starvation', 'A pool whose tasks wait for their own children starves.',
           'Each request submits 4 children to the pool it runs on and waits for them. With 8 '
           'clients and 4 workers, does anything finish?',
           'tasks queued against running, and the labs chart: starvations found',
           _lab('nested')),
    Lesson('cancellation', 'Work for a client that has left is waste, unless it is cancelled.',
           'Clients give up after 0.1 s on 0.5 s requests. How many seconds of work does a '
           'thread per request do for nobody, and a pool that cancels?',
           'wasted work (seconds per second)',
           _lab('cancel')),
]
BY_NAME = {l.name: l for l in LESSONS}


def listing():
    width = max(len(l.name) for l in LESSONS)
    return '\n'.join('%-*s  %s' % (width, l.name, l.claim) for l in LESSONS)


def lesson(args, out, progress):
    """The lesson args.lesson_name names: its prediction and address first, then the run."""
    l = BY_NAME[args.lesson_name]
    port = args.admin_port or lab.ephemeral_port()
    say = progress.line
    say('lesson %s: %s' % (l.name, l.claim))
    say('predict: %s' % l.predict)
    say('watch: http://127.0.0.1:%d/ (the live page; every server of this lesson takes this '
        'admin port in turn): %s' % (port, l.watch))
    lab.Server.default_admin_port = args.admin_port = port
    lab.Server.banner = {'title': 'lesson %s: %s' % (l.name, l.claim), 'predict': l.predict,
                         'watch': l.watch}
    try:
        rows, words, figure = l.run(args, out, progress)
    finally:
        lab.Server.default_admin_port = 0
    summary = LessonRow(scenario='lesson', mode='', lesson=l.name, claim=l.claim,
                        predict=l.predict, kind=l.run.kind, verdict='verdict: %s' % words,
                        figure=figure, path='lesson: ' + l.name)
    # The experiment's own tables first; the lesson's verdict and figure close the output.
    return [dict(r, path=r.get('path', '')) for r in rows] + [summary.as_dict()]


FIGURE_COLUMNS = records.check_columns(LessonRow, [('figure', 'figure', lambda v: v)])


def columns_for(section):
    if section.startswith('lesson: '):
        return FIGURE_COLUMNS
    if section.startswith('spike') or section.startswith('/work/'):
        return scenarios.SPIKE_COLUMNS
    return failure_labs.columns_for(section)
