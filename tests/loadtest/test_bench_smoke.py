"""A short run of `loadtest/run bench` (what scripts/bench runs) through the real driver: every
server of the /healthz comparison measured against the reference, and the other figures in
words, in the report's tables and summary.json."""

import re

from scenario_reports import ReportTest, ScenarioRun

SERVERS = ['reference', 'blocking', 'bounded', 'thread_per_request', 'coroutine']


class BenchSmokeTest(ReportTest):
    RUN = ScenarioRun('bench', 'STAMPEDE_BENCH_REPORT', args=('--threads', '1', '--waiting', '500'))

    @property
    def healthz(self):
        return {r['mode']: r for r in self.rows if r['path'] == '/healthz at 1 thread'}

    @property
    def figures(self):
        return {r['figure']: r['value'] for r in self.rows if r['path'] == 'other figures'}

    def test_every_server_is_measured_against_the_reference(self):
        self.assertEqual(sorted(self.healthz), sorted(SERVERS))
        self.assertEqual(self.healthz['reference']['ratio'], 1.0)
        for name, r in self.healthz.items():
            self.assertGreater(r['rps'], 100, name)
            self.assertGreater(r['cpu_us'], 0, name)
            self.assertAlmostEqual(r['ratio'], r['rps'] / self.healthz['reference']['rps'],
                                   places=6, msg=name)

    def test_thread_per_request_pays_for_its_threads(self):
        # A thread created and joined per request costs more CPU than any pooled mode.
        h = self.healthz
        self.assertGreater(h['thread_per_request']['cpu_us'],
                           max(h[m]['cpu_us'] for m in ('bounded', 'coroutine')))

    def test_the_other_figures_are_told(self):
        f = self.figures
        self.assertEqual(len(f), 5, f)
        refused = next(v for k, v in f.items() if k.startswith('saturated bounded pool'))
        self.assertRegex(refused, r'^[\d,]+ 503/s \((9\d|100) % of answers\)')
        for k, v in f.items():
            if k.startswith('memory per'):
                kib = float(re.match(r'([\d.]+) KiB', v).group(1))
                self.assertTrue(0.5 < kib < 64, (k, v))

    def test_the_table_says_what_the_model_was_told(self):
        self.assertIn('bench — /healthz at 1 thread', self.stdout)
        self.assertIn('bench — other figures', self.stdout)
        self.assertIn('(bench: the mode, its I/O threads, and a pool sized for the figure '
                      'measured)', self.stdout)
