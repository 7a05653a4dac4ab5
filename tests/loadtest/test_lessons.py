"""One lesson at a time: every lesson that `loadtest/run lesson --list` names runs through the
real driver and binary, prints its prediction, then the live page's address, then its
verdict and figure, in that order, and the figure shows what the lesson claims."""

import json
import os
import re
import subprocess
import tempfile
import unittest

from stampede_load import lessons

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
BINARY = os.environ.get('STAMPEDE_BIN', os.path.join(ROOT, 'build', 'stampede'))


def run_lesson(name):
    out = tempfile.mkdtemp(prefix='stampede-lesson-')
    done = subprocess.run(
        ['/usr/bin/python3', os.path.join(ROOT, 'loadtest', 'run'), 'lesson', name, '--out', out,
         '--binary', BINARY, '--admin-port', '0'], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    with open(os.path.join(out, 'summary.json')) as f:
        rows = json.load(f)['scenarios']['lesson']
    with open(os.path.join(out, 'summary.json')) as f:
        wall = json.load(f)['wall_seconds']
    # The driver's progress and the lesson's first lines go to stderr, the report to stdout.
    return done.stderr + done.stdout, rows, wall


class LessonsTest(unittest.TestCase):
    def check(self, name):
        text, rows, wall = run_lesson(name)
        print('\n%s\n(%.0f s)' % (text[-1500:], wall))
        predict = text.index('predict: ')
        watch = re.search(r'watch: http://127\.0\.0\.1:(\d+)/', text)
        verdict = text.rindex('verdict: ')
        figure = text.rindex('figure: ')
        self.assertLess(predict, watch.start())
        self.assertLess(watch.start(), verdict)
        self.assertLess(verdict, figure)
        # Every server of the lesson took the address the lesson printed.
        port = watch.group(1)
        pages = re.findall(r'live page: http://127\.0\.0\.1:(\d+)/', text)
        self.assertTrue(pages)
        self.assertEqual(set(pages), {port})
        # A one-minute experiment (the bound is wider for a loaded machine: the closing
        # figures are in the test's output).
        self.assertLess(wall, 90)
        return rows[-1], rows[:-1]

    def test_the_list_names_every_lesson_with_its_claim(self):
        done = subprocess.run(['/usr/bin/python3', os.path.join(ROOT, 'loadtest', 'run'),
                               'lesson', '--list'], capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        for l in lessons.LESSONS:
            self.assertRegex(done.stdout, r'(?m)^%s +%s$' % (re.escape(l.name),
                                                              re.escape(l.claim)))
        bad = subprocess.run(['/usr/bin/python3', os.path.join(ROOT, 'loadtest', 'run'),
                              'lesson', 'no-such-lesson'], capture_output=True, text=True,
                             timeout=60)
        self.assertEqual(bad.returncode, 2)
        self.assertIn('loadtest/run lesson --list', bad.stderr)

    def check_spike(self, name, bad_mode, ok_mode):
        """The unbounded mode is OOM-killed and serves less than the bounded one, which stays."""
        summary, rows = self.check(name)
        bad = next(r for r in rows if r['mode'] == bad_mode)
        ok = next(r for r in rows if r['mode'] == ok_mode)
        self.assertGreaterEqual(bad['oom_kills'], 1)
        self.assertEqual(ok['oom_kills'], 0)
        self.assertGreater(ok['goodput_per_s'], bad['goodput_per_s'])
        self.assertIn('%s was OOM-killed' % bad_mode, summary['verdict'])

    def test_runaway(self):
        self.check_spike('runaway', 'thread_per_request', 'bounded')

    def test_cheap_tasks(self):
        self.check_spike('cheap-tasks', 'coroutine', 'coroutine (max_tasks 64)')

    def test_lost_update(self):
        summary, rows = self.check('lost-update')
        self.assertRegex(summary['figure'],
                         r'^\d+ % of increments lost .*; mutex, atomic, owner: 0 lost$')

    def test_share_by_communicating(self):
        summary, rows = self.check('share-by-communicating')
        owner = [r for r in rows if r.get('variant') == 'owner']
        self.assertEqual(len(owner), 4)  # every mode
        self.assertTrue(all(r['lost'] == 0 and r['expected'] > 0 for r in owner), owner)
        self.assertRegex(summary['verdict'], r'the owner took [\d,]+ increments/s, against [\d,]+ '
                                             r'for a mutex')
        self.assertRegex(summary['figure'], r'^owner: 0 lost')

    def test_global_lock(self):
        summary, rows = self.check('global-lock')
        for mode in ('thread_per_request', 'coroutine', 'bounded'):
            g = next(r for r in rows if r.get('mode') == mode and r.get('variant') == 'global')
            n = next(r for r in rows if r.get('mode') == mode and r.get('variant') == 'narrow')
            self.assertLess(g['goodput'], 60, g)  # one 20 ms request at a time: 50/s
            self.assertGreater(n['goodput'], 4 * g['goodput'], (g, n))
            self.assertGreater(g['waiting_peak'], 5, g)

    def test_parallelism(self):
        summary, rows = self.check('parallelism')
        for r in rows:
            if 'wall_ms' not in r:
                continue
            if r['variant'] != 'parallel' or r['mode'] == 'blocking' or r['threads'] == 1:
                self.assertGreaterEqual(r['wall_ms'], 0.95 * r['work_ms'], r)
        if (os.cpu_count() or 1) > 1:
            tpr = next(r for r in rows if r.get('mode') == 'thread_per_request' and
                       r.get('variant') == 'parallel')
            self.assertLess(tpr['wall_ms'], 0.8 * tpr['work_ms'], tpr)

    def test_cleanup_storm(self):
        summary, rows = self.check('cleanup-storm')
        for mode in ('thread_per_request', 'coroutine'):
            u = next(r for r in rows if r.get('mode') == mode and r.get('variant') == 'unbounded')
            b = next(r for r in rows if r.get('mode') == mode and r.get('variant') == 'bounded')
            self.assertGreater(u['cleanups_peak'], 64, u)  # more cleanups than clients
            self.assertLessEqual(b['cleanups_peak'], b['queue'], b)
            self.assertGreater(u['healthz_p90_ms'], 3 * b['healthz_p90_ms'], (u, b))

    def test_race_free(self):
        summary, rows = self.check('race-free')
        atomic = [r for r in rows if r.get('variant') == 'atomic' and 'oversold' in r]
        self.assertGreater(max(r['oversold'] for r in atomic), 0)
        self.assertIn('race-free is not correct', summary['verdict'])
        self.assertTrue(summary['figure'].endswith('mutex: 0 oversold'), summary['figure'])

    def test_leak(self):
        summary, rows = self.check('leak')
        self.assertTrue(summary['figure'].endswith('fixed: 0 leaked'), summary['figure'])

    def test_deadlock(self):
        summary, rows = self.check('deadlock')
        self.assertRegex(summary['figure'], r'cycle reported after \d+ ms')

    def test_starvation(self):
        summary, rows = self.check('starvation')
        self.assertRegex(summary['figure'], r'with 8; reported after \d+ ms')

    def test_cancellation(self):
        summary, rows = self.check('cancellation')
        self.assertIn('bounded (cancel_on_disconnect)', summary['figure'])


if __name__ == '__main__':
    unittest.main()
