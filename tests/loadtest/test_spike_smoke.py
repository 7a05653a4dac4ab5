"""A short smoke run of the spike scenario through the real driver, wrk and server,
asserting the invariants the demo is meant to show."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
BINARY = os.environ.get('STAMPEDE_BIN', os.path.join(ROOT, 'build', 'stampede'))


class SpikeSmokeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Under ctest the run is made once by the fixture loadtest.spike_smoke_run; alone,
        # this test makes its own.
        cls.out = os.environ.get('STAMPEDE_SMOKE_REPORT')
        if not cls.out:
            cls.out = tempfile.mkdtemp(prefix='stampede-spike-')
            run = subprocess.run(
                ['/usr/bin/python3', os.path.join(ROOT, 'loadtest', 'run'), 'spike', '--quick',
                 '--endpoints', 'io', '--out', cls.out, '--binary', BINARY],
                capture_output=True, text=True, timeout=240)
            if run.returncode != 0:
                raise AssertionError('loadtest/run failed:\n' + run.stdout + run.stderr)
        with open(os.path.join(cls.out, 'table.txt')) as f:
            cls.stdout = f.read()
        with open(os.path.join(cls.out, 'summary.json')) as f:
            rows = json.load(f)['scenarios']['spike']
        cls.by_mode = {r['mode']: r for r in rows}

    def test_thread_per_request_spawns_ten_times_the_threads_of_bounded(self):
        tpr = self.by_mode['thread_per_request']['threads_peak']
        bounded = self.by_mode['bounded']['threads_peak']
        self.assertGreaterEqual(tpr, 10 * bounded, (tpr, bounded))

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

    def test_bounded_admitted_latency_stays_near_baseline(self):
        b = self.by_mode['bounded']
        self.assertIsNotNone(b['baseline_p99_us'])
        self.assertLessEqual(b['ok_p99_us'], 4 * b['baseline_p99_us'],
                             (b['ok_p99_us'], b['baseline_p99_us']))

    def test_report_files_and_plots_exist(self):
        for name in ('summary.md', 'summary.json', 'series-io-blocking.csv',
                     'series-io-thread_per_request.csv', 'series-io-bounded.csv'):
            self.assertTrue(os.path.getsize(os.path.join(self.out, name)) > 0, name)
        plots = self.by_mode['bounded']['plots']
        self.assertGreaterEqual(len(plots), 5)
        with open(os.path.join(self.out, 'summary.md')) as f:
            md = f.read()
        for png in plots:
            path = os.path.join(self.out, png)
            with open(path, 'rb') as f:
                head = f.read(8)
            self.assertEqual(head, b'\x89PNG\r\n\x1a\n', png)
            self.assertGreater(os.path.getsize(path), 5000, png)
            self.assertIn('](%s)' % png, md)

    def test_table_is_printed(self):
        for mode in ('blocking', 'thread_per_request', 'bounded'):
            self.assertIn(mode, self.stdout)
        self.assertIn('coordinated omission', self.stdout)


if __name__ == '__main__':
    unittest.main()
