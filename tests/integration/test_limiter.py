"""The adaptive limit and the CoDel queue through the real binary: 503 limit at once without
touching a worker, the limit learnt from load, live reconfiguration, and a standing queue that
serves the newest first and answers the stale at once."""

import threading
import time
import unittest

from harness import SANITIZED, Server, hold_requests, in_threads, wait_for

PINNED = 'limiter:\n  algorithm: aimd\n  initial: 2\n  min: 2\n  max: 2\n'


def limit_of(server, mode):
    m = server.metrics()
    return (m.value('stampede_limit', mode=mode), m.value('stampede_limit_inflight', mode=mode))


class LimiterTest(unittest.TestCase):
    def test_over_the_limit_is_503_limit_at_once_in_every_mode(self):
        # blocking's limit is on its line at the lock: one runs, one waits there (three I/O
        # threads, so that the third request is read while they hold theirs).
        for mode, extra, started in (('coroutine', '', 2), ('thread_per_request', '', 2),
                                     ('bounded', 'bounded:\n  workers: 8\n', 2),
                                     ('blocking', 'main:\n  io_threads: 3\n', 1)):
            with self.subTest(mode=mode), Server('mode: %s\n%s%s' % (mode, extra, PINNED)) as s:
                held = hold_requests(s, 2, '/work/io?ms=3000')
                try:
                    self.assertTrue(wait_for(lambda: limit_of(s, mode) == (2, 2)),
                                    limit_of(s, mode))
                    r = s.get('/work/io?ms=10')
                    self.assertEqual(r.status, 503)
                    self.assertEqual(r.json()['reason'], 'limit')
                    self.assertIn('retry-after', r.headers)
                    self.assertLess(r.elapsed, 0.5 if SANITIZED else 0.1)
                    m = s.metrics()
                    self.assertEqual(m.value('stampede_rejected_total', mode=mode,
                                             reason='limit'), 1)
                    # It touched no worker: nothing but the held ones ever started.
                    self.assertEqual(m.value('stampede_tasks_started_total', mode=mode),
                                     started)
                finally:
                    for h in held:
                        h.close()

    def test_the_limit_is_learnt_from_load_and_stays_within_its_bounds(self):
        # Every sample updates the limit (no window), so that 400 requests are plenty.
        config = ('mode: coroutine\nlimiter:\n  algorithm: aimd\n  initial: 4\n  min: 2\n'
                  '  max: 12\n  window_ms: 0\n')
        with Server(config) as s:
            self.assertEqual(limit_of(s, 'coroutine')[0], 4)

            def client(i):
                codes = []
                for _ in range(25):
                    codes.append(s.get('/work/io?ms=20').status)
                return codes

            codes = [c for cs in in_threads(16, client) for c in cs]
            limit, inflight = limit_of(s, 'coroutine')
            # AIMD grows while half its limit is in use: 16 clients push it to its max...
            self.assertEqual(limit, 12)
            self.assertEqual(inflight, 0)
            # ...and turned some away on the way, with 503 limit.
            self.assertIn(503, codes)
            self.assertIn(200, codes)
            self.assertEqual(set(codes), {200, 503})

    def test_a_reload_switches_the_limiter_live_and_a_bad_one_keeps_it(self):
        with Server('mode: coroutine\ncoroutine:\n  max_tasks: 50\n') as s:
            self.assertEqual(limit_of(s, 'coroutine')[0], 50)
            s.write_config('mode: coroutine\ncoroutine:\n  max_tasks: 50\n' + PINNED)
            self.assertTrue(wait_for(lambda: limit_of(s, 'coroutine')[0] == 2))
            self.assertEqual(s.config()['limiter']['algorithm'], 'aimd')
            s.write_config('mode: coroutine\nlimiter:\n  algorithm: vegas\n  min: 9\n'
                           '  initial: 3\n')
            self.assertTrue(wait_for(lambda: s.metrics().value(
                'stampede_config_reloads_total', result='error') >= 1))
            self.assertEqual(limit_of(s, 'coroutine')[0], 2)
            line = next(l for l in reversed(s.log) if 'limiter.initial' in l)
            self.assertIn('stampede.yaml', line)
            s.write_config('mode: coroutine\ncoroutine:\n  max_tasks: 50\n')
            self.assertTrue(wait_for(lambda: limit_of(s, 'coroutine')[0] == 50))

    def _burst(self, queue):
        """One worker, 40 requests of 50 ms sent 10 ms apart: twice what the worker serves, so
        the queue stands for about 2 s. Returns each answer and when it came back."""
        config = ('mode: bounded\nbounded:\n  workers: 1\n  queue_capacity: 100\n'
                  '  queue_timeout_ms: 10000\n  queue: %s\n  codel_target_ms: 300\n' % queue)
        with Server(config) as s:
            results = [None] * 40
            done = [0.0] * 40
            t0 = time.monotonic()

            def send(i):
                time.sleep(max(0.0, t0 + 0.01 * i - time.monotonic()))
                results[i] = s.get('/work/io?ms=50')
                done[i] = time.monotonic()

            threads = [threading.Thread(target=send, args=(i,)) for i in range(40)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            return results, done, s.metrics()

    def test_fifo_serves_everyone_oldest_first_and_the_last_waits_longest(self):
        results, done, m = self._burst('fifo')
        self.assertEqual([r.status for r in results], [200] * 40)
        self.assertGreater(results[-1].elapsed, 1.0)
        self.assertEqual(m.value('stampede_rejected_total', mode='bounded',
                                 reason='queue_timeout'), 0)

    def test_codel_answers_the_stale_at_once_and_serves_the_newest_first(self):
        results, done, m = self._burst('codel')
        codes = [r.status for r in results]
        timed_out = [r for r in results if r.status == 503]
        self.assertGreaterEqual(len(timed_out), 10, codes)
        for r in timed_out:
            self.assertEqual(r.json()['reason'], 'queue_timeout')
            # The target (300 ms), not the queue timeout (10 s), bounds the wait.
            self.assertLess(r.elapsed, 0.6 if not SANITIZED else 1.5)
        self.assertEqual(m.value('stampede_rejected_total', mode='bounded',
                                 reason='queue_timeout'), len(timed_out))
        # Adaptive LIFO: the last request did not wait behind the others, and some request
        # was served before an older one that was served too.
        self.assertEqual(codes[-1], 200)
        self.assertLess(results[-1].elapsed, 0.25 if not SANITIZED else 1.0)
        served = [i for i, c in enumerate(codes) if c == 200]
        self.assertTrue(any(done[b] < done[a] for a in served for b in served if b > a), codes)


if __name__ == '__main__':
    unittest.main()
