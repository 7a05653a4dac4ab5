"""The driver's parsers, on samples recorded from real runs (tests/loadtest/samples)."""

import math
import os
import unittest

from stampede_load import lab
from stampede_load import promtext
from stampede_load import report
from stampede_load import wrkparse

HERE = os.path.dirname(os.path.abspath(__file__))


def sample(name):
    with open(os.path.join(HERE, 'samples', name)) as f:
        return f.read()


class ParsersTest(unittest.TestCase):
    def test_wrk_counts_and_success_histogram(self):
        out = sample('wrk-bounded-io.txt')
        r = wrkparse.parse(out)
        self.assertEqual(r.requests, 103375)
        self.assertEqual(r.count(200), 207)
        self.assertEqual(r.count(503), 103168)
        self.assertEqual(r.count_class(2), 207)
        self.assertEqual(r.ok_count, 207)
        self.assertEqual(sum(r.buckets.values()), 207)
        self.assertEqual(r.timeouts, 0)
        self.assertAlmostEqual(wrkparse.requests_per_second(out), 49230.93)

    def test_wrk_percentiles_are_within_a_bucket(self):
        r = wrkparse.parse(sample('wrk-bounded-io.txt'))
        # 185 of 207 successes fall in bucket 535: 1.02**535 .. 1.02**536 µs (about 40 ms).
        p50 = r.ok_percentile(0.5)
        self.assertGreaterEqual(p50, 1.02 ** 535)
        self.assertLessEqual(p50, 1.02 ** 536)
        self.assertLessEqual(r.ok_percentile(1.0), r.ok_max_us)
        self.assertLess(r.ok_percentile(0.001), 1.02 ** 503)  # the two fast ones, bucket 502

    def test_wrk_merge_adds_counts_and_histograms(self):
        r = wrkparse.parse(sample('wrk-bounded-io.txt'))
        m = wrkparse.merge([r, r])
        self.assertEqual(m.requests, 2 * r.requests)
        self.assertEqual(m.count(503), 2 * r.count(503))
        self.assertEqual(m.ok_percentile(0.5), r.ok_percentile(0.5))

    def test_unanswered_counts_what_was_sent_without_an_answer(self):
        r = wrkparse.parse('STAMPEDE_WRK {"duration_us":1,"requests":5,"sent":8,"bytes":0,'
                           '"errors":{},"codes":{"200":5},"ok":{"count":5,"sum_us":5,'
                           '"max_us":1,"buckets":{"0":5}}}')
        self.assertEqual(r.unanswered, 3)
        self.assertIsNone(wrkparse.parse(sample('wrk-bounded-io.txt')).unanswered)

    def test_wrk_without_the_line_is_an_error(self):
        with self.assertRaises(ValueError):
            wrkparse.parse('Running 1s test @ http://127.0.0.1:1\n')

    def test_prometheus_text(self):
        m = promtext.Metrics(sample('metrics-bounded.txt'))
        self.assertEqual(m.value('stampede_os_threads'), 5)
        self.assertEqual(m.value('stampede_http_requests_total', mode='bounded', handler='io',
                                 code='503'), 103180)
        self.assertEqual(m.value('stampede_rejected_total', mode='bounded'), 103180)
        self.assertEqual(m.value('stampede_mode_info', mode='bounded'), 1)
        self.assertTrue(m.has('process_resident_memory_bytes'))
        self.assertEqual(m.value('no_such_metric'), 0)

    def test_prometheus_histogram_quantile(self):
        m = promtext.Metrics(sample('metrics-bounded.txt'))
        q = m.histogram_quantile(0.5, 'stampede_http_success_duration_seconds', mode='bounded',
                                 handler='io')
        self.assertGreater(q, 0.025)  # io?ms=20 waited behind another request: ~40 ms
        self.assertLess(q, 0.075)

    def test_prometheus_labels_with_escapes_and_special_values(self):
        samples = promtext.parse('a{x="q\\"uote",y="b\\\\s"} +Inf\nb NaN\nc 1e3 1700000000\n')
        self.assertEqual(samples[0][1], {'x': 'q"uote', 'y': 'b\\s'})
        self.assertTrue(math.isinf(samples[0][2]))
        self.assertTrue(math.isnan(samples[1][2]))
        self.assertEqual(samples[2][2], 1000)
        with self.assertRaises(ValueError):
            promtext.parse('a{x=unquoted} 1\n')

    def test_window_quantile_of_series(self):
        rows = [{'t': 0.0, 'ok': 0, 'rejected': 0, 'cancelled': 0, 'requests': 0,
                 'cpu_seconds': 0, 'rss_bytes': 2**20},
                {'t': 1.0, 'ok': 10, 'rejected': 5, 'cancelled': 0, 'requests': 15,
                 'cpu_seconds': 0.5, 'rss_bytes': 2**20}]
        buckets = [(0.0, {'0.1': 0, '0.2': 0, '+Inf': 0}),
                   (1.0, {'0.1': 5, '0.2': 10, '+Inf': 10})]
        d = report.derive(rows, buckets)
        self.assertEqual(d[1]['ok_per_s'], 10)
        self.assertEqual(d[1]['rejected_per_s'], 5)
        self.assertAlmostEqual(d[1]['server_p99_ms'], 198.0)
        self.assertIsNone(d[0]['server_p99_ms'])

    def test_no_rate_or_quantile_is_taken_across_a_restart(self):
        # Two processes (an OOM kill and a restart between): the new one's counters are higher
        # in every bucket, so only the start time can tell the delta is not one process's.
        rows = [{'t': 0.0, 'ok': 3, 'rejected': 0, 'cancelled': 0, 'requests': 3,
                 'cpu_seconds': 0.1, 'rss_bytes': 2**20, 'started': 100.0},
                {'t': 0.5, 'ok': 9, 'rejected': 0, 'cancelled': 0, 'requests': 9,
                 'cpu_seconds': 0.2, 'rss_bytes': 2**20, 'started': 100.4},
                {'t': 0.9, 'ok': 19, 'rejected': 0, 'cancelled': 0, 'requests': 19,
                 'cpu_seconds': 0.3, 'rss_bytes': 2**20, 'started': 100.4}]
        buckets = [(0.0, {'0.1': 3, '0.2': 3, '+Inf': 3}),
                   (0.5, {'0.1': 9, '0.2': 9, '+Inf': 9}),
                   (0.9, {'0.1': 9, '0.2': 19, '+Inf': 19})]
        d = report.derive(rows, buckets)
        self.assertIsNone(d[1]['server_p99_ms'])  # its only earlier row is the dead process's
        self.assertIsNone(d[1]['ok_per_s'])
        self.assertAlmostEqual(d[2]['ok_per_s'], 25.0)  # from the restart's first row only
        self.assertAlmostEqual(d[2]['server_p99_ms'], 199.0)  # 10 answers in (0.1, 0.2]

    def test_sampler_leaves_the_supervisors_healthz_probes_out_of_the_latency(self):
        text = ''.join(
            'stampede_http_success_duration_seconds_bucket{mode="bounded",handler="%s",le="%s"} '
            '%d\n' % (h, le, n) for h, le, n in [
                ('healthz', '0.001', 50), ('healthz', '0.2', 50), ('healthz', '+Inf', 50),
                ('io', '0.001', 0), ('io', '0.2', 7), ('io', '+Inf', 7)])

        class FakeServer:
            def metrics(self):
                return promtext.Metrics(text)

        sampler = lab.Sampler(FakeServer())
        sampler.sample()
        self.assertEqual(sampler.buckets[-1][1], {'0.001': 0, '0.2': 7, '+Inf': 7})


if __name__ == '__main__':
    unittest.main()
