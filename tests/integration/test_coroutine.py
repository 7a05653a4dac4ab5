"""The coroutine mode through the real binary: cheap tasks that hold no thread while they wait,
the max_tasks limit, cancellation, and live switching in and out of it."""

import resource
import statistics
import threading
import time
import unittest

from harness import SANITIZED, Server, hold_requests, in_threads, request_bytes, wait_for


def raise_open_files(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, needed), hard))
    return min(hard, needed)


class CoroutineTest(unittest.TestCase):
    def test_ten_thousand_waiting_tasks_hold_no_thread(self):
        n = 2000 if SANITIZED else 10000
        limit = raise_open_files(n + 500)
        if limit < n + 200:
            self.skipTest('open-file limit %d is below %d' % (limit, n + 200))
        config = ('mode: coroutine\ndownstream:\n  capacity: 0\nwork:\n  request_kb: 0\n'
                  'main:\n  backlog: 8192\nhttp:\n  max_connections: %d\n' % (n + 100))
        with Server(config) as server:
            warm = hold_requests(server, 1, '/healthz')
            time.sleep(0.3)
            before = server.metrics()
            held = hold_requests(server, n, '/work/io?ms=8000')
            try:
                self.assertTrue(wait_for(lambda: server.metrics().value(
                    'stampede_tasks', mode='coroutine', state='running') >= n * 0.95,
                    timeout=30))
                during = server.metrics()
                running = during.value('stampede_tasks', mode='coroutine', state='running')
                grown = (during.value('process_resident_memory_bytes') -
                         before.value('process_resident_memory_bytes'))
                per = grown / running
                print('\n%d tasks running; OS threads %d -> %d; RSS +%.1f MiB, %.2f KiB per '
                      'request (connection included); task frames %.0f KiB' % (
                          running, before.value('stampede_os_threads'),
                          during.value('stampede_os_threads'), grown / 2**20, per / 1024,
                          during.value('stampede_task_memory_bytes') / 1024))
                # The waiting tasks hold no OS thread.
                self.assertEqual(during.value('stampede_os_threads'),
                                 before.value('stampede_os_threads'))
                self.assertGreater(during.value('stampede_task_memory_bytes'), 0)
                if not SANITIZED:
                    self.assertLessEqual(per, 4096)
            finally:
                for s in held + warm:
                    s.close()

    def test_max_tasks_answers_the_excess_at_once(self):
        config = ('mode: coroutine\ncoroutine:\n  max_tasks: 64\n  retry_after_s: 3\n'
                  'downstream:\n  capacity: 0\nwork:\n  request_kb: 0\n')
        with Server(config) as server:
            peak = [0]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], server.metrics().value(
                        'stampede_tasks', mode='coroutine', state='running'))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            held = hold_requests(server, 64, '/work/io?ms=5000')
            try:
                self.assertTrue(wait_for(lambda: server.metrics().value(
                    'stampede_tasks', mode='coroutine', state='running') == 64))

                def one(_):
                    s = server.connect()
                    try:
                        start = time.monotonic()
                        s.sendall(request_bytes('/work/io?ms=5000'))
                        data = b''
                        while b'\r\n\r\n' not in data:
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        return time.monotonic() - start, data
                    finally:
                        s.close()

                results = in_threads(200, one)
                for r in results:
                    self.assertNotIsInstance(r, Exception)
                    self.assertIn(b' 503 ', r[1].split(b'\r\n')[0])
                    self.assertIn(b'Retry-After: 3', r[1])
                latencies = sorted(r[0] for r in results)
                print('\n503 task_limit: p50 %.1f ms, p99 %.1f ms over %d requests' % (
                    1000 * statistics.median(latencies),
                    1000 * latencies[int(len(latencies) * 0.99) - 1], len(latencies)))
                m = server.metrics()
                self.assertEqual(m.value('stampede_rejected_total', mode='coroutine',
                                         reason='task_limit'), 200)
            finally:
                stop.set()
                sampler.join()
                for s in held:
                    s.close()
            self.assertLessEqual(peak[0], 64)

    def test_cpu_work_yields_so_a_short_request_is_not_stuck_behind_it(self):
        config = 'mode: coroutine\ncoroutine:\n  threads: 1\nwork:\n  request_kb: 0\n'
        with Server(config) as server:
            order = []

            def cpu(_):
                r = server.get('/work/cpu?ms=1500')
                order.append('cpu')
                return r.status

            t = threading.Thread(target=cpu, args=(0,))
            t.start()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', mode='coroutine', state='running') == 1))
            r = server.get('/healthz')
            order.append('healthz')
            t.join(30)
            self.assertEqual(r.status, 200)
            # One thread, and the CPU task still running: only yielding lets /healthz through.
            self.assertEqual(order, ['healthz', 'cpu'])

    def test_waiting_for_the_downstream_holds_no_thread_and_cancels(self):
        config = ('mode: coroutine\ncoroutine:\n  cancel_on_disconnect: true\n'
                  'downstream:\n  capacity: 2\nwork:\n  request_kb: 0\n')
        with Server(config) as server:
            threads_before = server.metrics().value('stampede_os_threads')
            held = hold_requests(server, 50, '/work/io?ms=3000')
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_downstream_waiting') == 48))
            m = server.metrics()
            self.assertEqual(m.value('stampede_downstream_in_use'), 2)
            self.assertEqual(m.value('stampede_os_threads'), threads_before)
            for s in held:
                s.close()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_client_disconnects_total', mode='coroutine') == 50))
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_downstream_waiting') == 0 and server.metrics().value(
                'stampede_tasks', mode='coroutine', state='running') == 0))
            m = server.metrics()
            self.assertEqual(m.value('stampede_cancelled_total', mode='coroutine'), 50)
            # Each of the 50 stopped within a few ms of its client leaving (loaded CI: < 10 ms).
            self.assertLess(m.value('stampede_wasted_work_seconds_total', mode='coroutine'), 0.5)

    def test_live_switch_in_and_out_keeps_work_in_its_mode(self):
        with Server('mode: bounded\nwork:\n  request_kb: 0\n') as server:
            server.write_config('mode: coroutine\nwork:\n  request_kb: 0\n')
            self.assertTrue(wait_for(lambda: server.get('/healthz').headers.get(
                'x-stampede-mode') == 'coroutine'))
            result = {}

            def slow():
                result['r'] = server.get('/work/io?ms=1500')

            t = threading.Thread(target=slow)
            t.start()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', mode='coroutine', state='running') == 1))
            server.write_config('mode: bounded\nwork:\n  request_kb: 0\n')
            self.assertTrue(wait_for(lambda: server.get('/healthz').headers.get(
                'x-stampede-mode') == 'bounded'))
            t.join(30)
            self.assertEqual(result['r'].status, 200)
            self.assertEqual(result['r'].headers.get('x-stampede-mode'), 'coroutine')
            self.assertEqual(result['r'].json()['outcome'], 'ok')


if __name__ == '__main__':
    unittest.main()
