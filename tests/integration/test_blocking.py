"""blocking mode: the whole main port does one request at a time."""

import threading
import time
import unittest

from harness import Server, in_threads, request_bytes, wait_for


class BlockingTest(unittest.TestCase):
    def setUp(self):
        self.server = Server('mode: blocking\n').start()

    def tearDown(self):
        self.server.stop()

    def test_concurrent_requests_are_serialised(self):
        start = time.monotonic()

        def call(i):
            r = self.server.get('/work/io?ms=300')
            r.done_at = time.monotonic() - start
            return r

        results = in_threads(2, call)
        self.assertTrue(all(r.status == 200 for r in results), results)
        last_done = max(r.done_at for r in results)
        self.assertGreaterEqual(last_done, 0.6, 'the later request must wait for the first')
        self.assertEqual(results[0].headers['x-stampede-mode'], 'blocking')

    def test_healthz_waits_behind_work_while_admin_answers(self):
        slow = threading.Thread(target=lambda: self.server.get('/work/io?ms=800'))
        slow.start()
        self.assertTrue(wait_for(lambda: self.server.metrics().value(
            'stampede_tasks', mode='blocking', state='running') == 1, timeout=5))
        admin = self.server.admin_get('/healthz')
        self.assertEqual(admin.status, 200)
        health = self.server.get('/healthz')
        slow.join()
        self.assertEqual(health.status, 200)
        self.assertLess(admin.elapsed, 0.3, 'the admin port answers while the main port is blocked')
        self.assertGreater(health.elapsed, 0.3, 'main-port /healthz waits behind the running work')

    def test_departed_client_counts_as_wasted_work(self):
        s = self.server.connect()
        s.sendall(request_bytes('/work/io?ms=400'))
        time.sleep(0.1)
        s.close()  # gone while blocked: the server cannot notice until the handler returns
        m = wait_for(lambda: (lambda m: m if m.value('stampede_client_disconnects_total',
                                                      mode='blocking') >= 1 else None)(
            self.server.metrics()), timeout=5)
        self.assertIsNotNone(m)
        self.assertGreaterEqual(m.value('stampede_wasted_work_seconds_total', mode='blocking'), 0.3)
        self.assertTrue(wait_for(lambda: self.server.metrics().value(
            'stampede_http_requests_total', mode='blocking', code='499') == 1))
        self.assertEqual(m.value('stampede_cancelled_total', mode='blocking'), 0)


if __name__ == '__main__':
    unittest.main()
