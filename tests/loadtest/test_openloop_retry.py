"""stampede-openloop's retry policies (--retry), as the fleet's clients use them, against a
loopback server that turns every request away with 503 and records what arrives."""

import http.server
import os
import subprocess
import threading
import time
import unittest

from stampede_load import wrkparse
from harness import BINARY

OPENLOOP = os.path.join(os.path.dirname(BINARY), 'stampede-openloop')


class Overloaded:
    """A keep-alive HTTP/1.1 server on loopback that answers every request 503 (with
    Retry-After when `retry_after` is set), keeping each request's arrival time and its
    X-Stampede-Deadline-Ms header."""

    def __init__(self, retry_after=None):
        self.arrivals = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def do_GET(self):
                outer.arrivals.append((time.monotonic(),
                                       self.headers.get('X-Stampede-Deadline-Ms')))
                body = b'{"reason":"queue_full"}'
                self.send_response(503)
                if retry_after is not None:
                    self.send_header('Retry-After', str(retry_after))
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def run(port, rate, seconds, *flags):
    out = subprocess.run([OPENLOOP, '--target', '127.0.0.1:%d' % port, '--path', '/work/io',
                          '--rate', str(rate), '--duration', str(seconds), '--connections', '20',
                          '--timeout', '3000'] + list(flags),
                         capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise AssertionError(out.stdout + out.stderr)
    return wrkparse.parse(out.stdout)


class RetryPolicyTest(unittest.TestCase):
    def test_none_sends_each_request_once(self):
        with Overloaded() as server:
            r = run(server.port, 50, 1)
        self.assertEqual(r.sent, 50)
        self.assertEqual(len(server.arrivals), 50)
        self.assertEqual(r.retries, 0)

    def test_naive_retries_every_failure_at_once(self):
        with Overloaded() as server:
            r = run(server.port, 50, 1, '--retry', 'naive', '--retries', '3')
        # Three retries each, but none once the run's time is up (the last few requests').
        self.assertLessEqual(r.retries, 150)
        self.assertGreaterEqual(r.retries, 135)
        self.assertEqual(len(server.arrivals), 50 + r.retries)
        self.assertEqual(r.count(503), 50 + r.retries)

    def test_budget_allows_three_in_reserve_and_a_tenth_of_the_requests(self):
        with Overloaded() as server:
            r = run(server.port, 100, 1, '--retry', 'budget', '--retries', '3')
        # 3 in reserve, then 0.1 per request: at most 3 + 100 × 0.1 = 13 retries.
        self.assertLessEqual(r.retries, 13)
        self.assertGreaterEqual(r.retries, 3)
        self.assertEqual(len(server.arrivals), 100 + r.retries)

    def test_each_client_task_has_a_budget_of_its_own(self):
        with Overloaded() as server:
            r = run(server.port, 100, 1, '--retry', 'budget', '--retries', '3', '--tasks', '10')
        # 10 tasks: 3 each in reserve, and 0.1 per request between them.
        self.assertGreater(r.retries, 13)
        self.assertLessEqual(r.retries, 10 * 3 + 10)

    def test_throttle_refuses_locally_once_the_servers_accept_nothing(self):
        with Overloaded() as server:
            r = run(server.port, 100, 2, '--retry', 'throttle', '--retries', '3')
        # With no accepts, an attempt goes out with probability 1/(requests + 1): after the
        # first few, nearly every request is refused before it reaches the server.
        self.assertGreater(r.throttled, 150)
        self.assertLess(len(server.arrivals), 0.3 * 200 * 4)

    def test_polite_waits_for_retry_after(self):
        with Overloaded(retry_after=1) as server:
            r = run(server.port, 5, 1, '--retry', 'polite', '--retries', '1')
        self.assertEqual(r.retries, 5)
        self.assertEqual(len(server.arrivals), 10)
        first, retries = server.arrivals[:5], server.arrivals[5:]
        # Retry-After 1 with jitter (0.5-1.5×): no retry comes sooner than 0.5 s after the
        # last first attempt could have been answered.
        self.assertGreaterEqual(retries[0][0] - first[0][0], 0.45)

    def test_deadline_header_carries_the_time_left(self):
        with Overloaded() as server:
            run(server.port, 10, 1, '--deadline-header')
        values = [int(h) for _, h in server.arrivals]
        self.assertEqual(len(values), 10)
        for v in values:
            self.assertGreater(v, 0)
            self.assertLessEqual(v, 3000)


if __name__ == '__main__':
    unittest.main()
