"""The HTTP front end: keep-alive, errors, HEAD, malformed input."""

import http.client
import unittest

from harness import Server, request_bytes


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


if __name__ == '__main__':
    unittest.main()
