"""Graceful shutdown under load in each mode: SIGTERM stops accepting, lets in-flight
requests finish within shutdown.drain_timeout_ms, answers or cleanly closes the rest, and
exits 0; a second signal exits at once."""

import http.client
import signal
import threading
import time
import unittest

from harness import Server, request_bytes, wait_for

MODES = ('blocking', 'thread_per_request', 'bounded')


def fire(server, n, path):
    """n concurrent requests in threads; returns (threads, results list)."""
    results = [None] * n

    def one(i):
        try:
            results[i] = server.get(path, timeout=30).status
        except (http.client.RemoteDisconnected, ConnectionResetError, ConnectionRefusedError,
                BrokenPipeError) as e:
            results[i] = type(e).__name__
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads, results


class ShutdownTest(unittest.TestCase):
    def check_drain(self, mode):
        config = 'mode: %s\nshutdown:\n  drain_timeout_ms: 3000\nbounded:\n  workers: 4\n' % mode
        server = Server(config).start()
        threads, results = fire(server, 8, '/work/io?ms=600')
        self.assertTrue(wait_for(lambda: server.metrics().value('stampede_tasks', mode=mode,
                                                                  state='running') >= 1))
        running = server.metrics().value('stampede_tasks', mode=mode, state='running')
        start = time.monotonic()
        server.signal(signal.SIGTERM)
        code = server.wait_exit(15)
        took = time.monotonic() - start
        for t in threads:
            t.join(30)
        self.assertEqual(code, 0)
        self.assertLess(took, 3.0 + 1.5, 'exit within the drain timeout')
        ok = results.count(200)
        self.assertGreaterEqual(ok, running, 'requests running at SIGTERM finish: %s' % results)
        for r in results:
            # An answer, or a clean close; never a reset.
            self.assertIn(r, (200, 503, 'RemoteDisconnected'), results)
        log = ''.join(server.log)
        self.assertIn('shutting down', log)
        print('\n%s: %d running at SIGTERM; exit 0 after %.2f s; answers %s' % (
            mode, running, took, sorted(results, key=str)))
        return results

    def test_drain_blocking(self):
        self.check_drain('blocking')

    def test_drain_thread_per_request(self):
        results = self.check_drain('thread_per_request')
        self.assertEqual(results.count(200), 8, 'all were running; all finish')

    def test_drain_bounded(self):
        self.check_drain('bounded')

    def test_drain_timeout_stops_running_work_with_an_answer(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                server = Server('mode: %s\nshutdown:\n  drain_timeout_ms: 300\n' % mode).start()
                threads, results = fire(server, 2, '/work/io?ms=20000')
                self.assertTrue(wait_for(lambda: server.metrics().value(
                    'stampede_tasks', mode=mode, state='running') >= 1))
                start = time.monotonic()
                server.signal(signal.SIGTERM)
                self.assertEqual(server.wait_exit(15), 0)
                self.assertLess(time.monotonic() - start, 3.0, 'not the 20 s of work')
                for t in threads:
                    t.join(30)
                self.assertIn(503, results, 'the running request was stopped with an answer')

    def test_drain_timeout_stops_work_of_a_mode_switched_away_from(self):
        # A request still running under the previous mode after a live switch is stopped at
        # the drain timeout like the rest, not left to run out its 20 s.
        server = Server('mode: thread_per_request\nshutdown:\n  drain_timeout_ms: 300\n'
                        'reload:\n  poll_ms: 50\n').start()
        threads, results = fire(server, 1, '/work/io?ms=20000')
        self.assertTrue(wait_for(lambda: server.metrics().value(
            'stampede_tasks', mode='thread_per_request', state='running') == 1))
        server.write_config('mode: bounded\nshutdown:\n  drain_timeout_ms: 300\n'
                            'reload:\n  poll_ms: 50\n')
        self.assertTrue(wait_for(lambda: server.metrics().value(
            'stampede_mode_info', mode='bounded') == 1))
        start = time.monotonic()
        server.signal(signal.SIGTERM)
        self.assertEqual(server.wait_exit(30), 0)
        self.assertLess(time.monotonic() - start, 3.0, 'not the 20 s of work')
        for t in threads:
            t.join(30)
        self.assertEqual(results, [503], 'stopped with an answer')

    def test_shutdown_with_several_io_threads_while_connections_arrive(self):
        # The accept loop and shutdown both use the acceptor; with two I/O threads they must
        # not race (ThreadSanitizer builds would report it).
        server = Server('mode: bounded\nmain:\n  io_threads: 2\nshutdown:\n'
                        '  drain_timeout_ms: 500\n').start()
        stop = threading.Event()

        def connect_loop():
            while not stop.is_set():
                try:
                    server.get('/healthz', timeout=5)
                except OSError:
                    pass
        clients = [threading.Thread(target=connect_loop) for _ in range(4)]
        for c in clients:
            c.start()
        time.sleep(0.5)
        server.signal(signal.SIGTERM)
        try:
            self.assertEqual(server.wait_exit(15), 0)
        finally:
            stop.set()
            for c in clients:
                c.join(10)

    def test_second_signal_exits_at_once(self):
        server = Server('mode: bounded\nshutdown:\n  drain_timeout_ms: 20000\n').start()
        threads, results = fire(server, 1, '/work/io?ms=20000')
        self.assertTrue(wait_for(lambda: server.metrics().value(
            'stampede_tasks', state='running') == 1))
        server.signal(signal.SIGTERM)
        time.sleep(0.2)
        start = time.monotonic()
        server.signal(signal.SIGINT)
        code = server.wait_exit(10)
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertNotEqual(code, 0)
        for t in threads:
            t.join(30)

    def test_idle_keep_alive_connection_is_closed_at_once_while_draining(self):
        # A keep-alive connection waiting for its next request is closed gracefully when the
        # drain begins, not held open (or its next request read and served) until the work
        # still running ends.
        server = Server('mode: bounded\nshutdown:\n  drain_timeout_ms: 5000\n').start()
        idle = server.connect()
        idle.sendall(request_bytes('/healthz'))
        self.assertIn(b'200 OK', idle.recv(65536))
        threads, results = fire(server, 1, '/work/io?ms=2500')
        self.assertTrue(wait_for(lambda: server.metrics().value(
            'stampede_tasks', state='running') == 1))
        start = time.monotonic()
        server.signal(signal.SIGTERM)
        idle.settimeout(10)
        self.assertEqual(idle.recv(65536), b'', 'a graceful close: end of stream, no answer')
        closed_after = time.monotonic() - start
        idle.close()
        self.assertLess(closed_after, 1.5, 'closed as the drain began, not when the work ended')
        self.assertEqual(server.wait_exit(15), 0)
        for t in threads:
            t.join(30)
        self.assertEqual(results, [200], 'the running request still finished')

    def test_new_connections_are_refused_while_draining(self):
        server = Server('mode: bounded\nshutdown:\n  drain_timeout_ms: 5000\n').start()
        threads, results = fire(server, 1, '/work/io?ms=1500')
        self.assertTrue(wait_for(lambda: server.metrics().value(
            'stampede_tasks', state='running') == 1))
        server.signal(signal.SIGTERM)
        time.sleep(0.3)
        with self.assertRaises(OSError):
            server.get('/healthz', timeout=2)
        self.assertEqual(server.wait_exit(15), 0)
        for t in threads:
            t.join(30)
        self.assertEqual(results, [200])


if __name__ == '__main__':
    unittest.main()
