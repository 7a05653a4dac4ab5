"""The simulated downstream and the per-request working set, through the real binary."""

import time
import unittest

from harness import Server, hold_requests, in_threads, wait_for


class DownstreamTest(unittest.TestCase):
    def test_capacity_is_visible_and_calls_beyond_it_wait_in_line(self):
        config = 'mode: thread_per_request\ndownstream:\n  capacity: 3\nwork:\n  request_kb: 0\n'
        with Server(config) as server:
            m = server.metrics()
            self.assertEqual(m.value('stampede_downstream_capacity'), 3)
            sockets = hold_requests(server, 8, '/work/io?ms=1500')
            try:
                self.assertTrue(wait_for(lambda: server.metrics().value(
                    'stampede_downstream_waiting') == 5))
                m = server.metrics()
                self.assertEqual(m.value('stampede_downstream_in_use'), 3)
            finally:
                for s in sockets:
                    s.close()

    def test_throughput_stops_at_capacity(self):
        # 12 calls of 200 ms through 4 slots take three rounds (~600 ms), not one (200 ms).
        config = 'mode: thread_per_request\ndownstream:\n  capacity: 4\n'
        with Server(config) as server:
            start = time.monotonic()
            results = in_threads(12, lambda i: server.get('/work/io?ms=200'))
            elapsed = time.monotonic() - start
            self.assertTrue(all(r.status == 200 for r in results), results)
            self.assertGreaterEqual(elapsed, 0.6)
            waited = server.metrics().value('stampede_downstream_wait_seconds_count')
            self.assertEqual(waited, 12)

    def test_unlimited_capacity_never_waits(self):
        config = 'mode: thread_per_request\ndownstream:\n  capacity: 0\n'
        with Server(config) as server:
            start = time.monotonic()
            results = in_threads(12, lambda i: server.get('/work/io?ms=200'))
            self.assertTrue(all(r.status == 200 for r in results))
            self.assertLess(time.monotonic() - start, 0.6)
            self.assertEqual(server.metrics().value('stampede_downstream_capacity'), 0)

    def test_cancelled_waiter_frees_its_place(self):
        # bounded cancels on disconnect: a request waiting for the downstream whose client
        # leaves is stopped, and leaves the line.
        config = ('mode: bounded\nbounded:\n  workers: 4\ndownstream:\n  capacity: 1\n')
        with Server(config) as server:
            holder = hold_requests(server, 1, '/work/io?ms=3000')
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_downstream_in_use') == 1))
            waiter = hold_requests(server, 1, '/work/io?ms=3000')
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_downstream_waiting') == 1))
            waiter[0].close()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_downstream_waiting') == 0, timeout=3))
            holder[0].close()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_downstream_in_use') == 0, timeout=3))
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_cancelled_total', mode='bounded', stage='running') == 2))

    def test_capacity_changes_live(self):
        with Server('mode: bounded\ndownstream:\n  capacity: 5\n') as server:
            server.write_config('mode: bounded\ndownstream:\n  capacity: 9\n')
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_downstream_capacity') == 9))
            self.assertEqual(server.config()['downstream']['capacity'], 9)

    def test_fanout_fetches_go_through_the_downstream(self):
        # 8 parallel fetches of 150 ms through 2 slots: four rounds, not one.
        config = 'mode: thread_per_request\ndownstream:\n  capacity: 2\n'
        with Server(config) as server:
            r = server.get('/work/fanout?n=8&ms=150&parallel=1')
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()['fetched'], 8)
            self.assertGreaterEqual(r.elapsed, 0.6)


if __name__ == '__main__':
    unittest.main()
