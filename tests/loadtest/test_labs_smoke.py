"""A short smoke run of `loadtest/run labs` through the real driver, clients and server,
asserting what each lab is meant to show: the unsafe variant fails under load, the fixed one
holds, the detectors report."""

import os
import unittest


from scenario_reports import ReportTest, ScenarioRun

class LabsSmokeTest(ReportTest):
    RUN = ScenarioRun('labs', 'STAMPEDE_LABS_REPORT')

    def section(self, name):
        return [r for r in self.rows if r['path'].startswith(name)]

    def one(self, name, **kv):
        return next(r for r in self.section(name) if all(r.get(k) == v for k, v in kv.items()))

    def test_the_labs_table_has_a_row_and_a_verdict_per_lab(self):
        table = self.section('the labs')
        self.assertEqual([r['lab'] for r in table],
                         ['lost update', 'check-then-act', 'task leak', 'lock-order deadlock',
                          'pool starvation', 'ignored cancellation', 'global lock',
                          'concurrency is not parallelism', 'cleanup storm'])
        for r in table:
            self.assertIn(r['verdict'], self.stdout)

    def test_the_racy_counter_passes_alone_and_loses_updates_under_load(self):
        alone = self.one('lost update', clients=1)
        self.assertEqual(alone['lost'], 0)
        for mode in ('thread_per_request', 'bounded', 'coroutine'):
            self.assertGreater(self.one('lost update', mode=mode, variant='racy', clients=16)
                               ['lost'], 0, mode)
        fixed = [r for r in self.section('lost update') if r['variant'] != 'racy']
        self.assertTrue(all(r['lost'] == 0 and r['expected'] > 0 for r in fixed))
        owner = [r for r in fixed if r['variant'] == 'owner']
        self.assertEqual(len(owner), 4)  # the owner task in every mode
        self.assertEqual(self.one('lost update', mode='blocking', variant='racy')['lost'], 0)

    def test_the_racy_and_the_race_free_atomic_reserve_oversell_and_mutex_does_not(self):
        for variant in ('racy', 'atomic'):
            rows = [r for r in self.section('check-then-act') if r['variant'] == variant]
            self.assertGreater(max(r['oversold'] for r in rows), 0, variant)
        mutex = [r for r in self.section('check-then-act') if r['variant'] == 'mutex']
        self.assertTrue(all(r['oversold'] == 0 and r['sold'] == r['stock'] for r in mutex))

    def test_leaks_take_the_pool_threads_or_tasks_and_the_fix_leaks_nothing(self):
        bounded = self.one('task leak', mode='bounded', variant='leaky')
        self.assertEqual(bounded['leaked'], 4)  # one per worker, then nothing runs
        self.assertNotEqual(bounded['healthz_after'], 200)
        tpr = self.one('task leak', mode='thread_per_request', variant='leaky')
        self.assertGreaterEqual(tpr['threads_grew'], tpr['leaked'] * 0.9)
        coroutine = self.one('task leak', mode='coroutine', variant='leaky')
        self.assertGreater(coroutine['leaked'], 10)
        self.assertLessEqual(coroutine['threads_grew'], 1)
        self.assertEqual(self.one('task leak', mode='blocking', variant='leaky')['leaked'], 0)
        self.assertTrue(all(r['leaked'] == 0 for r in self.section('task leak')
                            if r['variant'] == 'fixed'))

    def test_the_deadlock_hangs_bounded_is_detected_and_ordered_locks_hold(self):
        dl = self.one('lock-order deadlock', mode='bounded', variant='unordered', break_cycles='no')
        self.assertGreater(dl['goodput_before'], 5)
        self.assertLess(dl['goodput_after'], 1)
        self.assertGreaterEqual(dl['deadlocks'], 1)
        self.assertGreaterEqual(dl['detected_after_ms'], 500)
        self.assertLess(dl['detected_after_ms'], 1500)
        ordered = self.one('lock-order deadlock', variant='ordered')
        self.assertEqual(ordered['deadlocks'], 0)
        self.assertGreater(ordered['goodput_after'], dl['goodput_before'])
        broken = self.one('lock-order deadlock', break_cycles='yes')
        self.assertGreater(broken['victims'], 0)
        self.assertEqual(broken['healthz_after'], 200)

    def test_nested_children_starve_bounded_and_inline_ones_do_not(self):
        starved = self.one('pool starvation', mode='bounded', variant='nested')
        self.assertGreater(starved['goodput_before'], 2)
        self.assertLess(starved['goodput_after'], 1)
        self.assertGreaterEqual(starved['starved'], 1)
        inline = self.one('pool starvation', mode='bounded', variant='inline')
        self.assertEqual(inline['starved'], 0)
        self.assertGreater(inline['goodput_after'], 20)

    def test_ignored_cancellation_wastes_work_and_cancelling_does_not(self):
        ignored = self.one('ignored cancellation', variant='ignored')
        cancelled = self.one('ignored cancellation', variant='cancelled')
        self.assertGreater(ignored['wasted_s'], 10 * max(cancelled['wasted_s'], 0.1))

    def test_the_report_has_its_plots(self):
        for png in ('labs-leak-leaked.png', 'labs-leak-rss.png', 'labs-leak-threads.png',
                    'labs-transfer-goodput.png', 'labs-nested-goodput.png'):
            path = os.path.join(self.out, png)
            self.assertGreater(os.path.getsize(path), 5000, png)
        with open(os.path.join(self.out, 'summary.md')) as f:
            self.assertIn('labs-transfer-goodput.png', f.read())


if __name__ == '__main__':
    unittest.main()
