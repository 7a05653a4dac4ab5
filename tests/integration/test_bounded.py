"""bounded mode: a fixed pool, a bounded queue, fast 503s, cancellation on disconnect."""

import os
import socket
import threading
import time
import unittest

from harness import Server, in_threads, request_bytes, wait_for


def pool(workers, capacity, timeout_ms=5000, extra=''):
    return ('mode: bounded\nbounded:\n  workers: %d\n  queue_capacity: %d\n'
            '  queue_timeout_ms: %d\n%s' % (workers, capacity, timeout_ms, extra))


def metric_reaches(server, name, target, timeout=5, **labels):
    return wait_for(lambda: server.metrics().value(name, **labels) >= target, timeout=timeout)


class BoundedTest(unittest.TestCase):
    def test_os_threads_stay_constant_under_load(self):
        with Server(pool(4, 16)) as server:
            before = server.metrics().value('stampede_os_threads')
            samples = []
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    samples.append(server.metrics().value('stampede_os_threads'))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            results = in_threads(60, lambda i: server.get('/work/io?ms=300'))
            stop.set()
            sampler.join()
            self.assertGreater(len(samples), 5)
            self.assertEqual(set(samples), {before}, 'OS threads must not change with load')
            codes = [r.status for r in results]
            self.assertIn(200, codes)
            self.assertIn(503, codes)

    def test_workers_do_not_preempt_the_io_thread_and_nothing_else_changes_policy(self):
        # SCHED_BATCH (3): a woken worker does not preempt the I/O thread that woke it.
        def policies(pid):
            found = []
            for tid in os.listdir('/proc/%d/task' % pid):
                with open('/proc/%d/task/%s/stat' % (pid, tid)) as f:
                    fields = f.read().rsplit(')', 1)[1].split()
                found.append(int(fields[38]))  # field 41: policy (fields after the name)
            return found

        with Server(pool(3, 4)) as server:
            self.assertEqual(server.get('/work/io?ms=1').status, 200)
            found = policies(server.proc.pid)
            self.assertEqual(found.count(3), 3, found)
            self.assertEqual(len(found) - found.count(3), found.count(0), found)
            server.write_config(pool(5, 4))  # a reload adds two workers, also SCHED_BATCH
            self.assertTrue(wait_for(lambda: policies(server.proc.pid).count(3) == 5, timeout=10),
                            policies(server.proc.pid))

    def test_full_queue_answers_fast_503_with_retry_after(self):
        with Server(pool(2, 2, extra='  retry_after_s: 3\n')) as server:
            results = in_threads(10, lambda i: server.get('/work/io?ms=1500'))
            ok = [r for r in results if r.status == 200]
            rejected = [r for r in results if r.status == 503]
            self.assertEqual(len(ok), 4, [r.status for r in results])
            self.assertEqual(len(rejected), 6)
            for r in rejected:
                self.assertEqual(r.json()['reason'], 'queue_full')
                self.assertEqual(r.headers.get('retry-after'), '3')
                self.assertLess(r.elapsed, 0.5, 'a full queue answers at once')
            m = server.metrics()
            self.assertEqual(m.value('stampede_rejected_total', mode='bounded',
                                     reason='queue_full'), 6)
            self.assertEqual(m.value('stampede_tasks_started_total', mode='bounded'), 4)

    def test_queued_work_times_out_and_never_runs(self):
        with Server(pool(1, 5, timeout_ms=100)) as server:
            holder = threading.Thread(target=lambda: server.get('/work/io?ms=1500'))
            holder.start()
            self.assertTrue(metric_reaches(server, 'stampede_tasks', 1, mode='bounded',
                                           state='running'))
            r = server.get('/work/io?ms=10')
            self.assertEqual(r.status, 503)
            self.assertEqual(r.json()['reason'], 'queue_timeout')
            self.assertLess(r.elapsed, 1.0, 'answered when its queue time ran out')
            holder.join()
            m = server.metrics()
            self.assertEqual(m.value('stampede_tasks_started_total', mode='bounded'), 1)
            self.assertEqual(m.value('stampede_rejected_total', reason='queue_timeout'), 1)

    def test_disconnect_removes_queued_work(self):
        with Server(pool(1, 5)) as server:
            holder = threading.Thread(target=lambda: server.get('/work/io?ms=800'))
            holder.start()
            self.assertTrue(metric_reaches(server, 'stampede_tasks', 1, mode='bounded',
                                           state='running'))
            s = server.connect()
            s.sendall(request_bytes('/work/io?ms=500'))
            self.assertTrue(metric_reaches(server, 'stampede_queue_depth', 1))
            s.close()
            self.assertTrue(metric_reaches(server, 'stampede_cancelled_total', 1, mode='bounded',
                                           stage='queued'))
            self.assertEqual(server.metrics().value('stampede_queue_depth'), 0)
            holder.join()
            time.sleep(0.2)
            m = server.metrics()
            self.assertEqual(m.value('stampede_tasks_started_total', mode='bounded'), 1,
                             'cancelled queued work must never run')
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_http_requests_total', mode='bounded', code='499') == 1))

    def test_disconnect_stops_running_work_and_frees_the_worker(self):
        with Server(pool(1, 5)) as server:
            s = server.connect()
            s.sendall(request_bytes('/work/cpu?ms=5000'))
            self.assertTrue(metric_reaches(server, 'stampede_tasks', 1, mode='bounded',
                                           state='running'))
            s.close()
            self.assertTrue(metric_reaches(server, 'stampede_cancelled_total', 1, mode='bounded',
                                           stage='running'))
            r = server.get('/work/io?ms=0', timeout=10)
            self.assertEqual(r.status, 200)
            self.assertLess(r.elapsed, 1.0, 'the freed worker serves the next request at once')
            wasted = server.metrics().value('stampede_wasted_work_seconds_total', mode='bounded')
            self.assertLess(wasted, 0.1, 'stopped within a few milliseconds')

    def test_pipelined_request_is_data_not_a_disconnect(self):
        with Server(pool(2, 4)) as server:
            data, closed = server.send_raw(
                request_bytes('/work/io?ms=200') + request_bytes('/healthz', 'Connection: close\r\n'),
                read_timeout=5)
            text = data.decode()
            self.assertEqual(text.count('HTTP/1.1 200 OK'), 2, text)
            self.assertLess(text.index('"handler":"io"'), text.index('"handler":"healthz"'),
                            'answers come in request order')
            self.assertEqual(server.metrics().value('stampede_cancelled_total'), 0)

    def test_half_closed_client_is_treated_as_gone(self):
        with Server(pool(1, 4)) as server:
            s = server.connect()
            s.sendall(request_bytes('/work/io?ms=3000'))
            self.assertTrue(metric_reaches(server, 'stampede_tasks', 1, mode='bounded',
                                           state='running'))
            s.shutdown(socket.SHUT_WR)
            self.assertTrue(metric_reaches(server, 'stampede_cancelled_total', 1, mode='bounded',
                                           stage='running'))
            s.settimeout(5)
            self.assertEqual(s.recv(100), b'', 'no answer: the connection is closed')
            s.close()

    def test_fanout_is_limited_and_needs_no_extra_worker(self):
        with Server(pool(1, 0, extra='  fanout_limit: 4\n')) as server:
            r = server.get('/work/fanout?n=8&ms=200&parallel=1')
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()['fetched'], 8)
            # 8 fetches, 4 at a time: two rounds of 200 ms, on the single worker.
            self.assertGreaterEqual(r.elapsed, 0.4)
            self.assertLess(r.elapsed, 1.2)


if __name__ == '__main__':
    unittest.main()
