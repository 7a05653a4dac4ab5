"""thread-per-request mode: a new OS thread per request, bounded only by a safety ceiling."""

import unittest

from harness import Server, hold_requests, request_bytes, wait_for


class ThreadPerRequestTest(unittest.TestCase):
    def test_os_threads_grow_with_concurrent_requests(self):
        with Server('mode: thread_per_request\n') as server:
            before = server.metrics().value('stampede_os_threads')
            sockets = hold_requests(server, 60, '/work/io?ms=3000')
            # A thread's spawn time is observed once std::thread has returned, which can be
            # after the thread has already started its request: wait for both.
            peak = wait_for(lambda: (lambda m: m if m.value(
                'stampede_tasks', mode='thread_per_request', state='running') >= 60 and m.value(
                'stampede_thread_spawn_seconds_count') >= 60 else None)(
                server.metrics()), timeout=10)
            self.assertIsNotNone(peak, 'all 60 requests should be running at once')
            self.assertGreaterEqual(peak.value('stampede_os_threads'), before + 60)
            self.assertGreaterEqual(
                peak.value('stampede_thread_spawn_seconds_count'), 60)
            for s in sockets:
                s.close()
            # Threads end with their requests.
            self.assertTrue(wait_for(lambda: server.metrics().value('stampede_os_threads')
                                     <= before, timeout=10))

    def test_ceiling_answers_503_thread_ceiling(self):
        # bounded.retry_after_s is the bounded pool's; the ceiling has its own answer (1 s).
        with Server('mode: thread_per_request\nthread_per_request:\n  max_threads: 5\n'
                    'bounded:\n  retry_after_s: 7\n') as server:
            sockets = hold_requests(server, 5, '/work/io?ms=2000')
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', mode='thread_per_request', state='running') == 5))
            r = server.get('/work/io?ms=1')
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()['reason'], 'thread_ceiling')
            self.assertEqual(r.headers.get('retry-after'), '1')
            m = server.metrics()
            self.assertEqual(m.value('stampede_rejected_total', mode='thread_per_request',
                                     reason='thread_ceiling'), 1)
            for s in sockets:
                s.close()

    def test_disconnect_is_ignored_and_wasted_by_default(self):
        with Server('mode: thread_per_request\n') as server:
            s = server.connect()
            s.sendall(request_bytes('/work/io?ms=600'))
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', mode='thread_per_request', state='running') == 1))
            s.close()
            m = wait_for(lambda: (lambda m: m if m.value('stampede_wasted_work_seconds_total',
                                                          mode='thread_per_request') > 0 else None)(
                server.metrics()), timeout=5)
            self.assertIsNotNone(m)
            # The work ran to its end after the client left: about 0.5 s of it was wasted.
            self.assertGreater(m.value('stampede_wasted_work_seconds_total',
                                       mode='thread_per_request'), 0.3)
            self.assertEqual(m.value('stampede_cancelled_total', mode='thread_per_request'), 0)
            self.assertEqual(m.value('stampede_client_disconnects_total',
                                     mode='thread_per_request'), 1)

    def test_cancel_on_disconnect_when_enabled(self):
        with Server('mode: thread_per_request\nthread_per_request:\n'
                    '  cancel_on_disconnect: true\n') as server:
            s = server.connect()
            s.sendall(request_bytes('/work/io?ms=5000'))
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', mode='thread_per_request', state='running') == 1))
            s.close()
            m = wait_for(lambda: (lambda m: m if m.value(
                'stampede_cancelled_total', mode='thread_per_request', stage='running') == 1
                else None)(server.metrics()), timeout=5)
            self.assertIsNotNone(m)
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', mode='thread_per_request', state='running') == 0, timeout=2))
            self.assertLess(server.metrics().value('stampede_wasted_work_seconds_total',
                                                   mode='thread_per_request'), 0.2)

    def test_fanout_parallel_takes_about_one_fetch(self):
        with Server('mode: thread_per_request\n') as server:
            par = server.get('/work/fanout?n=8&ms=200&parallel=1')
            seq = server.get('/work/fanout?n=4&ms=100&parallel=0')
            self.assertEqual(par.status, 200)
            self.assertEqual(par.json()['fetched'], 8)
            self.assertLess(par.elapsed, 8 * 0.2 / 2, 'parallel fetches overlap')
            self.assertGreaterEqual(seq.elapsed, 0.4, 'sequential fetches add up')


if __name__ == '__main__':
    unittest.main()
