"""A short smoke run of the spike scenario through the real driver, clients with deadlines
and server, asserting the invariants the demo is meant to show."""

import html
import os
import shutil
import subprocess
import tempfile
import unittest


from scenario_reports import ReportTest, ScenarioRun

class SpikeSmokeTest(ReportTest):
    RUN = ScenarioRun('spike', 'STAMPEDE_SMOKE_REPORT', ('--endpoints', 'io'), 240)

    @property
    def by_mode(self):
        return {r['mode']: r for r in self.report.rows}

    def test_thread_per_request_spawns_many_times_the_threads_of_bounded(self):
        tpr = self.by_mode['thread_per_request']['threads_peak']
        bounded = self.by_mode['bounded']['threads_peak']
        self.assertGreaterEqual(tpr, 5 * bounded, (tpr, bounded))

    def test_bounded_thread_count_never_changes(self):
        b = self.by_mode['bounded']
        self.assertEqual(b['threads_min'], b['threads_peak'])
        series = os.path.join(self.out, 'series-io-bounded.csv')
        with open(series) as f:
            header = f.readline().strip().split(',')
            col = header.index('os_threads')
            threads = {float(line.split(',')[col]) for line in f if line.strip()}
        self.assertEqual(len(threads), 1, threads)

    def test_bounded_sheds_part_of_the_spike_with_503(self):
        b = self.by_mode['bounded']
        self.assertGreater(b['rejected_503'], 0)
        self.assertGreater(b['goodput'], 0)

    def test_bounded_goodput_is_near_the_downstream_capacity(self):
        b = self.by_mode['bounded']
        self.assertEqual(b['capacity_per_s'], 320)
        self.assertGreaterEqual(b['goodput_per_s'], 0.8 * b['capacity_per_s'], b['goodput_per_s'])
        self.assertLessEqual(b['goodput_per_s'], 1.05 * b['capacity_per_s'], b['goodput_per_s'])

    def test_unbounded_concurrency_raises_no_goodput(self):
        # The downstream is the bottleneck: thread_per_request cannot beat bounded's goodput.
        tpr = self.by_mode['thread_per_request']['goodput_per_s']
        self.assertLessEqual(tpr, self.by_mode['bounded']['goodput_per_s'] * 1.05)

    def test_bounded_admitted_latency_stays_near_baseline(self):
        b = self.by_mode['bounded']
        self.assertIsNotNone(b['baseline_p99_us'])
        self.assertLessEqual(b['ok_p99_us'], 4 * b['baseline_p99_us'],
                             (b['ok_p99_us'], b['baseline_p99_us']))

    def test_blocking_clients_give_up_at_their_deadline(self):
        blocking = self.by_mode['blocking']
        self.assertGreater(blocking['timeouts'], 0)
        self.assertLess(blocking['goodput_per_s'], 20)

    def test_coroutine_tasks_outnumber_its_threads_and_max_tasks_bounds_them(self):
        co = self.by_mode['coroutine']
        limited = self.by_mode['coroutine (max_tasks 64)']
        # The goroutine count climbs with the spike while the OS threads stay few.
        self.assertGreaterEqual(co['tasks_peak'], 4 * co['threads_peak'])
        self.assertLess(co['threads_peak'], self.by_mode['bounded']['threads_peak'])
        self.assertLessEqual(limited['tasks_peak'], 64)
        self.assertGreater(limited['rejected_503'], 0)
        # Unbounded tasks hold more memory than the limited ones at the same load.
        self.assertGreater(co['rss_peak'], limited['rss_peak'])

    def test_summary_carries_the_per_mode_outcome(self):
        for mode, r in self.by_mode.items():
            for key in ('oom_kills', 'lost_in_flight', 'recovery_s', 'goodput_per_s', 'verdict'):
                self.assertIn(key, r, (mode, key))
            self.assertTrue(r['verdict'].startswith(mode + ':'), r['verdict'])
        self.assertEqual(self.by_mode['bounded']['oom_kills'] or 0, 0)

    def test_report_files_and_plots_exist(self):
        for name in ('summary.md', 'summary.json', 'series-io-blocking.csv',
                     'series-io-thread_per_request.csv', 'series-io-bounded.csv',
                     'series-io-coroutine.csv', 'series-io-coroutine-max_tasks64.csv',
                     'clients-io-bounded.csv'):
            self.assertTrue(os.path.getsize(os.path.join(self.out, name)) > 0, name)
        plots = self.by_mode['bounded']['plots']
        self.assertIn('spike-io-goodput.png', plots)
        self.assertIn('spike-io-rss.png', plots)
        with open(os.path.join(self.out, 'summary.md')) as f:
            md = f.read()
        for png in plots:
            path = os.path.join(self.out, png)
            with open(path, 'rb') as f:
                head = f.read(8)
            self.assertEqual(head, b'\x89PNG\r\n\x1a\n', png)
            self.assertGreater(os.path.getsize(path), 5000, png)
            self.assertIn('](%s)' % png, md)
        for gp in ('spike-io-goodput.gp', 'spike-io-rss.gp'):
            with open(os.path.join(self.out, gp)) as f:
                script = f.read()
            self.assertIn('capacity' if 'goodput' in gp else 'memory limit', script)

    def test_even_the_smoke_run_reads_the_right_way(self):
        # The lesson must not read backwards on any path, this short one included: in the
        # model's memory limit the unbounded modes die of the spike and serve less.
        if not self.by_mode['bounded']['memory_limit_bytes']:
            self.skipTest('no memory cgroup here: ' + self.by_mode['bounded']['memory_limit_note'])
        bounded = self.by_mode['bounded']['goodput_per_s']
        for mode in ('thread_per_request', 'coroutine'):
            self.assertGreaterEqual(self.by_mode[mode]['oom_kills'], 1, mode)
            self.assertLess(self.by_mode[mode]['goodput_per_s'], bounded, mode)

    def test_the_handout_is_one_file_that_shows_every_plot_offline(self):
        with open(os.path.join(self.out, 'report.html')) as f:
            page = f.read()
        # Nothing it needs lies outside it: no link, script or image by address.
        self.assertNotRegex(page, r'(src|href)="(?!data:)')
        for mode in self.by_mode:
            self.assertTrue(html.escape(self.by_mode[mode]['verdict']) in page, mode)
        plots = self.by_mode['bounded']['plots']
        self.assertEqual(page.count('src="data:image/png;base64,'), len(plots))
        self.assertTrue('Every server started from config/stampede.yaml' in page)
        chromium = shutil.which('chromium')
        if chromium is None:
            self.fail('chromium is not installed (scripts/test installs it)')
        # Alone in a folder of its own, opened from disk, no network: every image decodes.
        folder = tempfile.mkdtemp(prefix='stampede-handout-')
        probe = page.replace('</body>', '<script>document.body.dataset.loaded = [...document.'
                             'images].filter(i => i.complete && i.naturalWidth > 0).length;'
                             '</script></body>')
        with open(os.path.join(folder, 'report.html'), 'w') as f:
            f.write(probe)
        run = subprocess.run(
            [chromium, '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--user-data-dir=' + tempfile.mkdtemp(prefix='stampede-chromium-'),
             '--virtual-time-budget=3000', '--dump-dom',
             'file://' + os.path.join(folder, 'report.html')],
            capture_output=True, text=True, timeout=120)
        self.assertIn('data-loaded="%d"' % len(plots), run.stdout, run.stderr[-2000:])

    def test_table_and_verdicts_are_printed(self):
        for mode in ('blocking', 'thread_per_request', 'bounded', 'coroutine',
                     'coroutine (max_tasks 64)'):
            self.assertIn('  %s: ' % mode, self.stdout)
        for column in ('goodput/s', 'OOM kills', 'lost in flight', 'recovery s',
                       'downstream busy %', 'tasks peak'):
            self.assertIn(column, self.stdout)
        self.assertIn('coordinated omission', self.stdout)


if __name__ == '__main__':
    unittest.main()
