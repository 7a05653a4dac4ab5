"""Slow clients (slowloris): hundreds of connections trickling their header or body byte by
byte must not stop normal requests being answered promptly, in any mode, and are timed out
(408) and closed."""

import socket
import statistics
import threading
import time
import unittest

from harness import Server, wait_for

SLOW = 300
HEADER = b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ' + b'a' * 200 + b'\r\n\r\n'
BODY = b'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n' + b'b' * 500


class Trickler(threading.Thread):
    """Opens `n` connections and sends each its request one byte at a time, round-robin."""

    def __init__(self, port, n, payload, seconds):
        super().__init__(daemon=True)
        self.socks = []
        for _ in range(n):
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            s.setblocking(False)
            self.socks.append([s, 0, b'', False])  # socket, bytes sent, reply, closed
        self.payload = payload
        self.deadline = time.monotonic() + seconds

    def run(self):
        while time.monotonic() < self.deadline:
            for entry in self.socks:
                s, sent, _, closed = entry
                if closed:
                    continue
                try:
                    chunk = s.recv(4096)
                    if chunk:
                        entry[2] += chunk
                    else:
                        entry[3] = True
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    entry[3] = True
                    continue
                if sent < len(self.payload) - 1:  # never the last byte: never complete
                    try:
                        s.send(self.payload[sent:sent + 1])
                        entry[1] += 1
                    except OSError:
                        entry[3] = True
            time.sleep(0.01)

    def wait_closed(self, timeout):
        """After the trickling: keeps reading (sending nothing) until the server has closed
        every connection or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while self.closed() < len(self.socks) and time.monotonic() < deadline:
            for entry in self.socks:
                if entry[3]:
                    continue
                try:
                    chunk = entry[0].recv(4096)
                    if chunk:
                        entry[2] += chunk
                    else:
                        entry[3] = True
                except BlockingIOError:
                    pass
                except OSError:
                    entry[3] = True
            time.sleep(0.02)
        return self.closed()

    def closed(self):
        return sum(1 for e in self.socks if e[3])

    def answered_408(self):
        return sum(1 for e in self.socks if e[2].startswith(b'HTTP/1.1 408'))

    def close(self):
        for e in self.socks:
            e[0].close()


class SlowClientTest(unittest.TestCase):
    def check(self, mode, payload):
        with Server('mode: %s\nhttp:\n  header_timeout_ms: 1500\n' % mode) as server:
            attack = Trickler(server.main_port, SLOW, payload, seconds=4)
            attack.start()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_connections_active') >= SLOW, timeout=5))
            latencies = []
            for _ in range(20):
                r = server.get('/work/io?ms=0', timeout=10)
                self.assertEqual(r.status, 200)
                latencies.append(r.elapsed)
                time.sleep(0.03)
            attack.join(10)
            attack.wait_closed(15)
            print('\n%s: normal requests under %d slow connections: median %.1f ms, max %.1f ms'
                  % (mode, SLOW, statistics.median(latencies) * 1000, max(latencies) * 1000))
            self.assertLess(max(latencies), 0.5, 'normal requests stay prompt')
            self.assertEqual(attack.closed(), SLOW, 'every slow connection was closed')
            self.assertEqual(attack.answered_408(), SLOW, 'each told 408 first')
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_connections_active') == 0, timeout=5))
            attack.close()

    def test_trickled_headers_blocking(self):
        self.check('blocking', HEADER)

    def test_trickled_headers_thread_per_request(self):
        self.check('thread_per_request', HEADER)

    def test_trickled_headers_bounded(self):
        self.check('bounded', HEADER)

    def test_trickled_body_bounded(self):
        self.check('bounded', BODY)


if __name__ == '__main__':
    unittest.main()
