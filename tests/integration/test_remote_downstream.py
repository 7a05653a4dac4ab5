"""downstream.url: a stampede calling another stampede over HTTP, through the real binaries.
The pool limit, the timeout, retries with and without a budget, deadline propagation, and a
downstream that is not there or dies mid-call."""

import signal
import subprocess
import threading
import time
import unittest

from harness import BINARY, Server, hold_requests, wait_for

MODES = ('blocking', 'thread_per_request', 'bounded', 'coroutine')


def caller_config(downstream, mode='coroutine', **settings):
    lines = ['mode: %s' % mode, 'work:', '  request_kb: 0', 'downstream:',
             '  url: http://%s/work/io' % downstream.main]
    lines += ['  %s: %s' % (k, str(v).lower() if isinstance(v, bool) else v)
              for k, v in settings.items()]
    return '\n'.join(lines) + '\n'


def busy_downstream(workers=1, queue=0, cancel=True):
    """A bounded stampede with `workers` workers and a queue of `queue` that holds its work
    for 10 s (a deadline, not the queue timeout, is what these tests see expire)."""
    return Server('mode: bounded\nwork:\n  request_kb: 0\ndownstream:\n  capacity: 0\n'
                  'bounded:\n  workers: %d\n  queue_capacity: %d\n  cancel_on_disconnect: %s\n'
                  '  queue_timeout_ms: 10000\n' % (workers, queue, str(cancel).lower()))


class RemoteDownstreamTest(unittest.TestCase):
    def test_every_mode_calls_the_real_downstream(self):
        with Server('mode: bounded\nwork:\n  request_kb: 0\n') as ds:
            for i, mode in enumerate(MODES):
                with Server(caller_config(ds, mode, capacity=2)) as caller:
                    r = caller.get('/work/io?ms=30')
                    self.assertEqual(r.status, 200, r.body)
                    self.assertEqual(r.json()['mode'], mode)
                    r = caller.get('/work/fanout?ms=30&n=4&parallel=1')
                    self.assertEqual(r.status, 200, r.body)
                    self.assertEqual(r.json()['fetched'], 4)
                    # Four fetches through two pooled connections take two rounds.
                    self.assertGreaterEqual(r.json()['elapsed_us'], 60000)
                    m = caller.metrics()
                    self.assertEqual(m.value('stampede_downstream_calls_total', outcome='ok'), 5)
                # The calls arrived at the downstream as requests of its own.
                self.assertEqual(ds.metrics().value('stampede_http_requests_total',
                                                    handler='io', code='200'), 5 * (i + 1))

    def test_pool_holds_at_most_capacity_connections(self):
        ds = Server('mode: thread_per_request\nwork:\n  request_kb: 0\n'
                    'downstream:\n  capacity: 0\n')
        with ds, Server(caller_config(ds, 'coroutine', capacity=2)) as caller:
            sockets = hold_requests(caller, 6, '/work/io?ms=1500')
            try:
                self.assertTrue(wait_for(lambda: caller.metrics().value(
                    'stampede_downstream_waiting') == 4))
                m = caller.metrics()
                self.assertEqual(m.value('stampede_downstream_in_use'), 2)
                self.assertEqual(m.value('stampede_downstream_capacity'), 2)
                self.assertEqual(ds.metrics().value('stampede_connections_active'), 2)
            finally:
                for s in sockets:
                    s.close()

    def test_a_slow_downstream_times_out_with_504(self):
        with Server('mode: coroutine\nwork:\n  request_kb: 0\n') as ds, \
                Server(caller_config(ds, 'bounded', timeout_ms=200)) as caller:
            r = caller.get('/work/io?ms=3000')
            self.assertEqual(r.status, 504, r.body)
            self.assertEqual(r.json()['reason'], 'downstream_timeout')
            self.assertLess(r.elapsed, 1.5)
            self.assertEqual(caller.metrics().value('stampede_downstream_calls_total',
                                                    outcome='timeout'), 1)

    def test_retries_without_a_budget_multiply_the_calls(self):
        with busy_downstream() as ds, \
                Server(caller_config(ds, 'coroutine', retries=2)) as caller:
            held = hold_requests(ds, 1, '/work/io?ms=5000')  # its one worker is busy
            try:
                self.assertTrue(wait_for(lambda: ds.metrics().value(
                    'stampede_tasks', state='running') == 1))
                r = caller.get('/work/io?ms=10')
                self.assertEqual(r.status, 503, r.body)
                self.assertEqual(r.json()['reason'], 'downstream_overloaded')
                self.assertEqual(r.headers.get('retry-after'), '1')
                m = caller.metrics()
                self.assertEqual(m.value('stampede_downstream_calls_total',
                                         outcome='overloaded'), 3)
                self.assertEqual(m.value('stampede_downstream_retries_total'), 2)
                self.assertEqual(ds.metrics().value('stampede_rejected_total',
                                                    reason='queue_full'), 3)
            finally:
                held[0].close()

    def test_a_retry_budget_caps_retries_at_its_share(self):
        with busy_downstream() as ds, Server(caller_config(
                ds, 'coroutine', retries=3, retry_budget_percent=10)) as caller:
            held = hold_requests(ds, 1, '/work/io?ms=8000')
            try:
                self.assertTrue(wait_for(lambda: ds.metrics().value(
                    'stampede_tasks', state='running') == 1))
                for _ in range(20):
                    self.assertEqual(caller.get('/work/io?ms=10').status, 503)
                m = caller.metrics()
                retries = m.value('stampede_downstream_retries_total')
                # 3 in reserve, then 0.1 per call: 5 at most, where no budget would allow 60.
                self.assertGreaterEqual(retries, 3)
                self.assertLessEqual(retries, 5)
                # Each call ends at a refused retry or at its last one: most were refused.
                self.assertGreaterEqual(m.value('stampede_downstream_retries_denied_total'), 15)
                self.assertEqual(ds.metrics().value('stampede_rejected_total',
                                                    reason='queue_full'), 20 + retries)
            finally:
                held[0].close()

    def test_a_passed_deadline_skips_the_work(self):
        # Queued behind a busy worker past its caller's deadline: answered 504, never run.
        with busy_downstream(queue=4, cancel=False) as ds:
            held = hold_requests(ds, 1, '/work/io?ms=700')
            try:
                self.assertTrue(wait_for(lambda: ds.metrics().value(
                    'stampede_tasks', state='running') == 1))
                r = ds.get('/work/io?ms=10', headers={'X-Stampede-Deadline-Ms': '200'})
                self.assertEqual(r.status, 504, r.body)
                self.assertEqual(r.json()['reason'], 'deadline_exceeded')
                self.assertEqual(ds.get('/work/io?ms=10', headers={
                    'X-Stampede-Deadline-Ms': '5000'}).status, 200)
                self.assertEqual(ds.get('/work/io', headers={
                    'X-Stampede-Deadline-Ms': 'soon'}).status, 400)
            finally:
                held[0].close()

    def test_the_deadline_travels_to_the_downstream(self):
        with busy_downstream(queue=4, cancel=False) as ds, Server(caller_config(
                ds, 'coroutine', timeout_ms=300, propagate_deadline=True)) as caller:
            held = hold_requests(ds, 1, '/work/io?ms=800')
            try:
                self.assertTrue(wait_for(lambda: ds.metrics().value(
                    'stampede_tasks', state='running') == 1))
                r = caller.get('/work/io?ms=10')
                self.assertEqual(r.status, 504, r.body)
                # The downstream dropped the queued call once its worker was free: the caller
                # had given up, so the work would have been for nobody.
                self.assertTrue(wait_for(lambda: ds.metrics().value(
                    'stampede_deadline_exceeded_total') == 1))
            finally:
                held[0].close()
            # The caller's own deadline bounds its call, whatever timeout_ms allows.
            caller.write_config(caller_config(ds, 'coroutine', timeout_ms=5000,
                                              propagate_deadline=True))
            self.assertTrue(wait_for(lambda: caller.config()['downstream']['timeout_ms'] == 5000))
            start = time.monotonic()
            r = caller.get('/work/io?ms=3000', headers={'X-Stampede-Deadline-Ms': '300'})
            self.assertEqual(r.status, 504, r.body)
            self.assertEqual(r.json()['reason'], 'deadline_exceeded')
            self.assertLess(time.monotonic() - start, 1.5)

    def test_a_downstream_that_is_not_there_is_503_refused(self):
        with Server('mode: bounded\n') as gone:
            address = gone.main
        with Server('mode: coroutine\nwork:\n  request_kb: 0\ndownstream:\n'
                    '  url: http://%s/work/io\n  retries: 1\n' % address) as caller:
            r = caller.get('/work/io?ms=10')
            self.assertEqual(r.status, 503, r.body)
            self.assertEqual(r.json()['reason'], 'downstream_refused')
            self.assertEqual(caller.metrics().value('stampede_downstream_calls_total',
                                                    outcome='refused'), 2)

    def test_a_downstream_that_dies_mid_call_is_502_lost(self):
        ds = Server('mode: coroutine\nwork:\n  request_kb: 0\n')
        with ds, Server(caller_config(ds, 'thread_per_request')) as caller:
            results = []
            t = in_threads_async(lambda: results.append(caller.get('/work/io?ms=5000')))
            self.assertTrue(wait_for(lambda: caller.metrics().value(
                'stampede_downstream_in_use') == 1))
            ds.stop(sig=signal.SIGKILL)
            t.join(10)
            self.assertEqual(results[0].status, 502, results[0].body)
            self.assertEqual(results[0].json()['reason'], 'downstream_lost')

    def test_a_bad_url_names_its_key(self):
        server = Server('downstream:\n  url: ftp://127.0.0.1:1/x\n')
        bad = subprocess.run([BINARY, '--check-config', server.config_path],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(bad.returncode, 2)
        self.assertIn(server.config_path + ':2: downstream.url: must be an http:// URL',
                      bad.stderr)


def in_threads_async(fn):
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    return t


if __name__ == '__main__':
    unittest.main()
