"""A short smoke run of `loadtest/run adaptive` (static and adaptive limits while the
downstream's capacity steps 32 → 8 → 64 → 32, calls slow down, then CPU work) through the real
driver, asserting what the lesson is meant to show and what summary.json must hold."""

import os
import unittest


from scenario_reports import ReportTest, ScenarioRun

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
BINARY = os.environ.get('STAMPEDE_BIN', os.path.join(ROOT, 'build', 'stampede'))
VARIANTS = ['bounded aimd', 'bounded codel', 'bounded gradient2', 'bounded static',
            'bounded vegas', 'coroutine aimd', 'coroutine gradient2', 'coroutine static',
            'coroutine vegas']
PHASES = ['32 slots', '8 slots', '64 slots', '32 slots again', 'calls take 2x', 'cpu']
FIELDS = ['goodput_pct', 'p99_x', 'steady_p99_x', 'mean_limit', 'ideal_limit', 'settle_s']


class AdaptiveSmokeTest(ReportTest):
    RUN = ScenarioRun('adaptive', 'STAMPEDE_ADAPTIVE_REPORT')

    @property
    def phase(self):
        return {(r['variant'], r['path']): r for r in self.report.rows if r['path'] != 'summary'}

    @property
    def summary(self):
        return {r['variant']: r for r in self.report.rows if r['path'] == 'summary'}

    def test_every_variant_has_every_phase_and_figure(self):
        self.assertEqual(sorted(self.summary), VARIANTS)
        for v in VARIANTS:
            for p in PHASES:
                r = self.phase[(v, p)]
                for field in FIELDS:
                    self.assertIn(field, r, (v, p))
                self.assertGreater(r['goodput_per_s'], 0, (v, p))
                self.assertGreater(r['mean_limit'], 0, (v, p))
        self.assertEqual(self.phase[('bounded static', '8 slots')]['ideal_limit'], 8)
        self.assertEqual(self.phase[('bounded static', '64 slots')]['ideal_limit'], 64)
        self.assertEqual(self.phase[('bounded static', 'calls take 2x')]['ideal_limit'], 32)

    def test_static_limits_stay_put_and_lose_where_they_were_not_sized(self):
        for p in PHASES:
            self.assertEqual(self.phase[('coroutine static', p)]['mean_limit'], 64)
            self.assertEqual(self.phase[('bounded static', p)]['mean_limit'], 96)
        # 32 workers cannot use 64 slots...
        self.assertLess(self.phase[('bounded static', '64 slots')]['goodput_pct'], 60)
        # ...and 64 tasks for 8 slots wait 8 calls' time.
        self.assertGreater(self.phase[('coroutine static', '8 slots')]['p99_x'], 4)

    def test_adaptive_limits_move_with_the_bottleneck(self):
        vegas = lambda p: self.phase[('coroutine vegas', p)]['mean_limit']  # noqa: E731
        self.assertLess(vegas('8 slots'), vegas('64 slots'))
        for v in ('coroutine vegas', 'bounded vegas', 'coroutine gradient2'):
            self.assertIsNotNone(self.phase[(v, '8 slots')]['settle_s'], v)
        # AIMD hears no drop (clients that give up are not drops): it only climbs.
        aimd = lambda p: self.phase[('coroutine aimd', p)]['mean_limit']  # noqa: E731
        self.assertGreater(aimd('32 slots again'), aimd('32 slots'))

    def test_codel_beats_fifo_where_the_queue_is_long(self):
        # 96 admitted for 80 calls/s: FIFO's answers come after the 1 s deadline. (The goodput
        # gap needs longer phases than a smoke run's: the full run's verdict gives it.)
        fifo = self.phase[('bounded static', '8 slots')]
        codel = self.phase[('bounded codel', '8 slots')]
        self.assertGreater(fifo['timeouts'], 0)
        self.assertLess(codel['timeouts'], fifo['timeouts'])
        self.assertLess(codel['p99_x'], fifo['p99_x'])
        self.assertGreaterEqual(codel['goodput_pct'], fifo['goodput_pct'])

    def test_prints_verdicts_tables_and_plots(self):
        for v in VARIANTS:
            self.assertIn('  %s: ' % v, self.stdout)
            self.assertTrue(self.summary[v]['verdict'].startswith(v + ': '))
        for p in PHASES:
            self.assertIn('adaptive — %s' % p, self.stdout)
        self.assertIn("Little's law", self.stdout)
        self.assertIn('CoDel served', self.summary['bounded codel']['verdict'])
        for what in ('limit', 'goodput'):
            for mode in ('coroutine', 'bounded'):
                png = os.path.join(self.out, 'adaptive-%s-%s.png' % (what, mode))
                self.assertGreater(os.path.getsize(png), 10000, png)
        with open(os.path.join(self.out, 'adaptive-coroutine-vegas.csv')) as f:
            self.assertEqual(f.readline().strip(), 't,limit,ideal,goodput,capacity')


if __name__ == '__main__':
    unittest.main()
