"""The per-request working set (work.request_kb, kb=), through the real binary."""

import unittest

from harness import Server, hold_requests, wait_for


class RequestMemoryTest(unittest.TestCase):
    def test_kb_is_validated(self):
        with Server('limits:\n  max_kb: 1024\n') as server:
            self.assertEqual(server.get('/work/io?ms=1&kb=1024').status, 200)
            for bad in ('kb=1025', 'kb=-1', 'kb=abc', 'kb=1&kb=2'):
                r = server.get('/work/io?ms=1&' + bad)
                self.assertEqual(r.status, 400, bad)
                self.assertIn('kb', r.json()['error'])

    def test_request_kb_above_max_kb_is_a_config_error(self):
        server = Server('work:\n  request_kb: 9000\nlimits:\n  max_kb: 4096\n')
        server.start(expect_listening=False)
        self.assertEqual(server.wait_exit(), 2)
        self.assertIn('work.request_kb', ''.join(server.log))

    def test_memory_gauge_follows_requests_in_flight(self):
        config = 'mode: thread_per_request\ndownstream:\n  capacity: 0\nwork:\n  request_kb: 512\n'
        with Server(config) as server:
            self.assertEqual(server.metrics().value('stampede_request_memory_bytes'), 0)
            rss_before = server.metrics().value('process_resident_memory_bytes')
            sockets = hold_requests(server, 10, '/work/io?ms=1500')
            try:
                self.assertTrue(wait_for(lambda: server.metrics().value(
                    'stampede_request_memory_bytes') == 10 * 512 * 1024))
                # Every page is written, so the memory is resident, not just reserved.
                rss = server.metrics().value('process_resident_memory_bytes')
                self.assertGreater(rss - rss_before, 10 * 512 * 1024 * 0.9)
            finally:
                for s in sockets:
                    s.close()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_request_memory_bytes') == 0, timeout=5))
            body = server.get('/work/io?ms=1&kb=3').json()
            self.assertEqual(body['kb'], 3)

    def test_healthz_holds_no_memory(self):
        with Server('work:\n  request_kb: 4096\n') as server:
            self.assertNotIn('kb', server.get('/healthz').json())


if __name__ == '__main__':
    unittest.main()
