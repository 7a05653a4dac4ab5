"""Malformed and ambiguous requests (tests/corpus/http): each gets a 4xx and a closed
connection — no crash, no hang, and no second request smuggled through behind it."""

import glob
import os
import re
import unittest

from harness import SOURCE, Server

CORPUS = sorted(glob.glob(os.path.join(SOURCE, 'tests', 'corpus', 'http', '*.http')))
FOLLOWER = b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'


class HostileTest(unittest.TestCase):
    def test_every_corpus_request_gets_4xx_and_a_closed_connection(self):
        self.assertGreater(len(CORPUS), 40)
        with Server('mode: bounded\n') as server:
            answers = {}
            for path in CORPUS:
                with open(path, 'rb') as f:
                    data = f.read()
                # A valid request follows in the same write: it must never be answered.
                reply, closed = server.send_raw(data + FOLLOWER, read_timeout=10)
                name = os.path.basename(path)
                statuses = re.findall(rb'HTTP/1\.[01] (\d{3})', reply)
                answers[name] = statuses
                self.assertEqual(len(statuses), 1, '%s: %r' % (name, reply[:300]))
                self.assertTrue(400 <= int(statuses[0]) < 500, '%s: %r' % (name, reply[:200]))
                self.assertTrue(closed, '%s: connection left open' % name)
            # The server is still healthy, and nothing was left running.
            self.assertEqual(server.get('/healthz').status, 200)
            m = server.metrics()
            self.assertEqual(m.value('stampede_tasks', state='running'), 0)
            self.assertEqual(server.proc.poll(), None)
            print('\n' + '\n'.join('%-28s %s' % (n, s[0].decode()) for n, s in answers.items()))

    def test_the_same_request_well_formed_is_served(self):
        with Server('mode: bounded\n') as server:
            reply, _ = server.send_raw(FOLLOWER[:-2] + b'Connection: close\r\n\r\n')
            self.assertTrue(reply.startswith(b'HTTP/1.1 200'), reply)

    def test_request_that_never_completes_gets_408(self):
        with Server('mode: bounded\nhttp:\n  header_timeout_ms: 300\n') as server:
            reply, closed = server.send_raw(b'GET /healthz HTTP/1.1\r\nHost: x\r\n', read_timeout=5)
            self.assertTrue(reply.startswith(b'HTTP/1.1 408'), reply)
            self.assertTrue(closed)

    def test_idle_keep_alive_connection_is_closed(self):
        with Server('mode: bounded\nhttp:\n  idle_timeout_ms: 200\n') as server:
            s = server.connect()
            s.settimeout(5)
            self.assertEqual(s.recv(10), b'', 'closed quietly after the idle timeout')
            s.close()

    def test_connections_past_the_limit_are_closed_and_counted(self):
        with Server('mode: bounded\nhttp:\n  max_connections: 3\n') as server:
            held = [server.connect() for _ in range(3)]
            for s in held:
                s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
                s.recv(1000)
            extra = server.connect()
            extra.settimeout(5)
            try:
                data = extra.recv(100)
            except ConnectionResetError:
                data = b''
            self.assertEqual(data, b'')
            self.assertEqual(server.metrics().value('stampede_connections_refused_total'), 1)
            for s in held + [extra]:
                s.close()


if __name__ == '__main__':
    unittest.main()
