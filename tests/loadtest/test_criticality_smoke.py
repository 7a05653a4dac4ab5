"""A short smoke run of `loadtest/run criticality` (critical clients alone, then a sheddable
flood at three times capacity, with the shipped shares and with every share at 100 %, in
bounded and in coroutine with vegas) through the real driver, asserting what the lesson is meant
to show."""

import unittest

from scenario_reports import ReportTest, ScenarioRun

MODES = ['bounded', 'coroutine']


class CriticalitySmokeTest(ReportTest):
    RUN = ScenarioRun('criticality', 'STAMPEDE_CRITICALITY_REPORT')

    @property
    def summary(self):
        return {r['mode']: r for r in self.rows if r['path'] == 'summary'}

    def row(self, mode, variant, phase, level):
        return next(r for r in self.rows if r['path'] == mode and r['variant'] == variant and
                    r['phase'] == phase and r['criticality'] == level)

    def test_the_critical_keep_their_goodput_only_with_criticality(self):
        self.assertEqual(sorted(self.summary), MODES)
        for mode, s in self.summary.items():
            self.assertTrue(s['holds'], s['verdict'])
            self.assertGreaterEqual(s['critical_with_pct'], 95, s['verdict'])
            # Without the shares the flood takes the critical clients' places.
            self.assertLess(s['critical_without_pct'], s['critical_with_pct'] - 30, s['verdict'])
            self.assertGreater(s['critical_alone_per_s'], 0)

    def test_the_sheddable_take_the_cut_and_the_server_counts_it(self):
        for mode in MODES:
            shed = self.row(mode, 'with criticality', 'sheddable flood', 'SHEDDABLE')
            crit = self.row(mode, 'with criticality', 'sheddable flood', 'CRITICAL')
            self.assertGreater(shed['goodput_per_s'], 0, mode)
            self.assertLess(shed['goodput_per_s'], shed['offered_per_s'] / 2, mode)
            # Every 503 the sheddable saw was counted at admission, by their criticality.
            self.assertGreater(shed['refused'], 0, mode)
            self.assertEqual(shed['refused'], shed['rejected_503'], mode)
            self.assertGreater(self.summary[mode]['shed'], 0, mode)
            self.assertEqual(crit['rejected_503'], 0, mode)

    def test_the_report_says_it_in_words(self):
        self.assertIn('criticality — summary', self.stdout)
        for mode in MODES:
            self.assertIn('%s (' % mode, self.summary[mode]['verdict'])
            self.assertIn('kept', self.summary[mode]['verdict'])
        self.assertNotIn('Latency figures come from wrk', self.stdout)


if __name__ == '__main__':
    unittest.main()
