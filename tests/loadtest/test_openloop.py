"""stampede-openloop, the open-loop generator: it keeps its schedule whatever the server
does, measures latency from intended send times, and only targets loopback."""

import os
import subprocess
import unittest

from stampede_load import wrkparse
from harness import BINARY, Server

OPENLOOP = os.path.join(os.path.dirname(BINARY), 'stampede-openloop')


def run(port, path, rate, seconds, connections=100, timeout_ms=5000):
    out = subprocess.run([OPENLOOP, '--target', '127.0.0.1:%d' % port, '--path', path,
                          '--rate', str(rate), '--duration', str(seconds),
                          '--connections', str(connections), '--timeout', str(timeout_ms)],
                         capture_output=True, text=True, timeout=seconds + timeout_ms / 1000 + 30)
    return out, wrkparse.parse(out.stdout)


class OpenLoopTest(unittest.TestCase):
    def test_keeps_its_schedule_while_the_server_stalls(self):
        # blocking mode serves 10 requests/s of 100 ms work; 20/s are offered for 2 s.
        with Server('mode: blocking\n') as server:
            out, r = run(server.main_port, '/work/io?ms=100', rate=20, seconds=2)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn('"scheduled":40', out.stdout, 'all 40 requests sent on schedule')
        self.assertEqual(r.count(200), 40)
        # The backlog grows by 1 s each second: the last answers come ~2 s after their
        # intended time. A closed-loop client would have reported ~0.2 s at most.
        self.assertGreater(r.ok_percentile(0.99), 1.5e6)
        self.assertGreater(r.ok_percentile(0.5), 0.5e6)

    def test_counts_statuses_and_success_latency(self):
        with Server('mode: bounded\nbounded:\n  workers: 2\n  queue_capacity: 2\n') as server:
            out, r = run(server.main_port, '/work/io?ms=200', rate=100, seconds=2)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertGreater(r.count(503), 0)
        self.assertGreater(r.count(200), 0)
        self.assertEqual(r.count(200) + r.count(503), 200)
        self.assertGreaterEqual(r.ok_percentile(0.5), 0.2e6)

    def test_refuses_targets_off_loopback(self):
        out = subprocess.run([OPENLOOP, '--target', '10.1.2.3:80', '--duration', '1'],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2)
        self.assertIn('loopback', out.stderr)


if __name__ == '__main__':
    unittest.main()
