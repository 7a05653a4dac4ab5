"""The HTTP front end: keep-alive, errors, HEAD, malformed input."""

import http.client
import json
import re
import unittest

from harness import Server, hold_requests, request_bytes, wait_for


class HttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server('mode: bounded\n').start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        conn = http.client.HTTPConnection('127.0.0.1', self.server.main_port, timeout=10)
        for _ in range(5):
            conn.request('GET', '/healthz')
            r = conn.getresponse()
            self.assertEqual(r.status, 200)
            r.read()
        conn.close()

    def test_status_codes(self):
        self.assertEqual(self.server.get('/nope').status, 404)
        self.assertEqual(self.server.get('/work/io?ms=1', method='POST').status, 405)
        self.assertEqual(self.server.get('/work/io?ms=-5').status, 400)
        self.assertEqual(self.server.get('/work/io?ms=999999999').status, 400)
        self.assertEqual(self.server.get('/work/fanout?n=1000&ms=1').status, 400)

    def test_body_is_instructive_json(self):
        body = self.server.get('/work/io?ms=5').json()
        self.assertEqual(body['mode'], 'bounded')
        self.assertEqual(body['handler'], 'io')
        self.assertEqual(body['outcome'], 'ok')
        self.assertGreaterEqual(body['elapsed_us'], 5000)

    def test_head_has_no_body(self):
        r = self.server.get('/healthz', method='HEAD')
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, '')

    def test_malformed_request_gets_400_and_a_closed_connection(self):
        data, closed = self.server.send_raw(b'GARBAGE\x00 / HTTP/9\r\n\r\n')
        self.assertTrue(data.startswith(b'HTTP/1.1 400'), data)
        self.assertTrue(closed)

    def test_oversized_header_gets_431(self):
        data, closed = self.server.send_raw(request_bytes('/healthz', 'X-Big: %s\r\n' % ('a' * 20000)))
        self.assertTrue(data.startswith(b'HTTP/1.1 431'), data[:100])
        self.assertTrue(closed)

    def test_http_1_0_closes_after_the_answer(self):
        data, closed = self.server.send_raw(b'GET /healthz HTTP/1.0\r\n\r\n')
        self.assertTrue(data.startswith(b'HTTP/1.0 200'), data)
        self.assertTrue(closed)

    def test_every_error_body_has_one_shape(self):
        def body_of(data):
            head, _, body = data.partition(b'\r\n\r\n')
            return int(head.split()[1]), json.loads(body)
        answers = [
            body_of(self.server.send_raw(raw)[0]) for raw in (
                b'GARBAGE\x00 / HTTP/9\r\n\r\n',                                  # 400
                request_bytes('/healthz', 'X-Big: %s\r\n' % ('a' * 20000)),         # 431
                request_bytes('/' + 'a' * 3000),                                     # 414
                b'POST /work/io?ms=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n',
            )]
        for path, method in (('/nope', 'GET'), ('/work/io?ms=1', 'POST'),
                             ('/work/io?ms=-5', 'GET')):
            r = self.server.get(path, method=method)
            answers.append((r.status, r.json()))
        for path, method in (('/nope', 'GET'), ('/labs/reset', 'GET'), ('/metrics', 'POST')):
            r = self.server._request(self.server.admin_port, path, method=method)
            answers.append((r.status, r.json()))
        statuses = [status for status, _ in answers]
        self.assertEqual(statuses, [400, 431, 414, 413, 404, 405, 400, 404, 405, 405])
        for status, body in answers:
            self.assertEqual(sorted(body), ['error', 'mode', 'reason', 'status'], body)
            self.assertEqual(body['status'], status)
            self.assertEqual(body['mode'], 'bounded')
            self.assertRegex(body['reason'], r'^[a-z_]+$')
            self.assertTrue(body['error'])

    def test_503s_say_why_in_the_same_shape_shutting_down_included(self):
        server = Server('mode: bounded\nbounded:\n  workers: 1\n  queue_capacity: 1\n'
                        '  queue_timeout_ms: 60000\nshutdown:\n  drain_timeout_ms: 200\n').start()
        try:
            held = hold_requests(server, 2, '/work/io?ms=10000')  # one runs, one queued
            self.assertTrue(wait_for(lambda: server.metrics().value('stampede_queue_depth') == 1))
            full = server.get('/work/io?ms=1')
            self.assertEqual((full.status, full.json()['reason']), (503, 'queue_full'))
            server.signal(15)
            answers = []
            for s in held:
                s.settimeout(10)
                data = b''
                while b'\r\n\r\n' not in data or not data.rstrip().endswith(b'}'):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                head, _, body = data.partition(b'\r\n\r\n')
                answers.append((int(head.split()[1]), json.loads(body)))
                s.close()
            for status, body in answers + [(full.status, full.json())]:
                self.assertEqual(status, 503)
                self.assertEqual(sorted(body), ['error', 'mode', 'reason', 'status'], body)
            self.assertEqual(sorted(b['reason'] for _, b in answers),
                             ['shutting_down', 'shutting_down'])
            self.assertEqual(server.wait_exit(10), 0)
        finally:
            server.stop()

    def test_404_and_405_keep_the_connection_but_a_bad_request_closes_it(self):
        two = request_bytes('/nope') + b'POST /healthz HTTP/1.1\r\nHost: x\r\n\r\n' + \
            request_bytes('/healthz')
        data, _ = self.server.send_raw(two, read_timeout=1.0)
        self.assertEqual(re.findall(rb'HTTP/1\.1 (\d{3}) ', data), [b'404', b'405', b'200'])
        data, closed = self.server.send_raw(request_bytes('/work/io?ms=x') +
                                            request_bytes('/healthz'))
        self.assertEqual(data.count(b'HTTP/1.1 '), 1, data)
        self.assertTrue(data.startswith(b'HTTP/1.1 400'))
        self.assertTrue(closed)


if __name__ == '__main__':
    unittest.main()
