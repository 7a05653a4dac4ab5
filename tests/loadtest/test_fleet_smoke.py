"""A short smoke run of `loadtest/run fleet` (a downstream, three replicas in memory cgroups,
HAProxy, clients with retry policies) through the real driver, asserting what the lesson
is meant to show and what summary.json must hold."""

import os
import re
import unittest


from scenario_reports import ReportTest, ScenarioRun

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
BINARY = os.environ.get('STAMPEDE_BIN', os.path.join(ROOT, 'build', 'stampede'))
FIELDS = ['variant', 'replica_deaths', 'goodput_before_per_s', 'goodput_after_per_s',
          'recovered_after_s', 'amplification']


class FleetSmokeTest(ReportTest):
    RUN = ScenarioRun('fleet', 'STAMPEDE_FLEET_REPORT')

    @property
    def cascade(self):
        return {r['variant']: r for r in self.report.rows if r['path'].startswith('cascade')}

    @property
    def metastable(self):
        return {r['variant']: r for r in self.report.rows if r['path'].startswith('metastable')}

    def test_summary_has_every_field_per_experiment_and_variant(self):
        self.assertEqual(sorted(self.cascade), ['bounded', 'coroutine', 'thread_per_request'])
        self.assertEqual(sorted(self.metastable), ['budget', 'deadline', 'naive', 'throttle'])
        for r in list(self.cascade.values()) + list(self.metastable.values()):
            for field in FIELDS:
                self.assertIn(field, r, r['variant'])
            self.assertGreater(r['goodput_before_per_s'], 0, r['variant'])

    def test_bounded_replicas_hold_and_unbounded_ones_die(self):
        bounded = self.cascade['bounded']
        self.assertEqual(bounded['replica_deaths'], 0)
        self.assertGreater(bounded['rejected_503'], 0)
        if 'cgroup' not in bounded['memory_note']:
            self.skipTest('no memory cgroup here: ' + bounded['memory_note'])
        for mode in ('thread_per_request', 'coroutine'):
            r = self.cascade[mode]
            self.assertGreaterEqual(r['replica_deaths'], 1, mode)
            self.assertGreater(bounded['goodput_per_s'], r['goodput_per_s'], mode)

    def test_naive_retries_amplify_and_stay_down_while_deadlines_recover(self):
        naive, deadline = self.metastable['naive'], self.metastable['deadline']
        self.assertIsNone(naive['recovered_after_s'])
        self.assertLess(naive['goodput_after_per_s'], 0.3 * naive['goodput_before_per_s'])
        self.assertGreater(naive['amplification'], 3)
        self.assertGreater(naive['wasted_s'], 1)
        self.assertEqual(deadline['outcome'], 'recovered')
        self.assertLessEqual(deadline['recovered_after_s'], 10)
        self.assertLess(deadline['wasted_s'], naive['wasted_s'])

    def test_budgets_and_the_throttle_bound_amplification(self):
        for name in ('budget', 'throttle'):
            r = self.metastable[name]
            self.assertLess(r['amplification'], 2, name)
            self.assertLess(r['amplification'], self.metastable['naive']['amplification'])

    def test_the_report_has_haproxy_configs_series_plots_and_verdicts(self):
        names = os.listdir(self.out)
        for png in ('cascade-goodput.png', 'metastable-goodput.png',
                    'metastable-amplification.png', 'metastable-queue.png'):
            self.assertIn(png, names)
            self.assertGreater(os.path.getsize(os.path.join(self.out, png)), 5000, png)
        configs = [n for n in names if n.endswith('-haproxy.cfg')]
        self.assertEqual(len(configs), 7)
        with open(os.path.join(self.out, 'metastable-naive-haproxy.cfg')) as f:
            naive_cfg = f.read()
        self.assertIn('balance leastconn', naive_cfg)
        self.assertIn('retry-on conn-failure empty-response 503 504', naive_cfg)
        self.assertEqual(len(re.findall(r'^\s+server r\d 127\.0\.0\.1:\d+ check ', naive_cfg,
                                        re.M)), 3)
        with open(os.path.join(self.out, 'metastable-deadline-haproxy.cfg')) as f:
            self.assertIn(' maxconn 100', f.read())
        for variant in list(self.cascade) + list(self.metastable):
            self.assertRegex(self.stdout, r'\n  %s: ' % variant)


if __name__ == '__main__':
    unittest.main()
