"""The path a user walks by hand, through the real scripts: scripts/serve (the model, inside its
memory limit, restarted after an OOM kill), scripts/load (wrk and the Lua script, read the
right way), and the mode switched by editing the config file as the README says. Then the same
with plain wrk -c1000, whose connections never give up. The lesson must read the right way on
this path too: bounded serves near the downstream's capacity, the unbounded modes are
OOM-killed and serve less."""

import os
import re
import glob
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from stampede_load import lab
from stampede_load.promtext import Metrics

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))


CAPACITY = 320.0  # the model's downstream: 32 slots of 100 ms


def cgroup_unavailable():
    probe = lab.MemoryCgroup(64 * 2**20, 'stampede-probe-%d' % os.getpid())
    probe.close()
    return None if probe.active else probe.why


class Serve:
    """scripts/serve on a copy of the shipped config, on ephemeral ports; its output kept."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='stampede-serve-')
        self.config = os.path.join(self.dir, 'stampede.yaml')
        shutil.copy(os.path.join(ROOT, 'config', 'stampede.yaml'), self.config)
        self.proc = subprocess.Popen(
            [os.path.join(ROOT, 'scripts', 'serve'), '--config', self.config, '--',
             '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines = []
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        deadline = time.monotonic() + 240  # scripts/serve builds first (a no-op here)
        while time.monotonic() < deadline and not self.listening():
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        m = self.listening()
        if not m:
            self.stop()
            raise AssertionError('scripts/serve did not start:\n' + ''.join(self.lines))
        self.main, self.admin = m.group(1), m.group(2)

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def listening(self):
        return next((m for m in (re.search(r'listening main=(\S+) admin=(\S+)', l)
                                 for l in list(self.lines)) if m), None)

    def switch(self, mode):
        """As the README says: edit mode: in the file, and the server follows."""
        subprocess.run(['sed', '-i', 's/^mode: .*/mode: %s/' % mode, self.config], check=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.metrics().value('stampede_mode_info', mode=mode) == 1:
                return
            time.sleep(0.1)
        raise AssertionError('the server did not switch to %s' % mode)

    def metrics(self, attempts=60):
        for _ in range(attempts):  # the server may be waiting out its restart back-off
            try:
                with urllib.request.urlopen('http://%s/metrics' % self.admin, timeout=2) as r:
                    return Metrics(r.read().decode())
            except OSError:
                time.sleep(0.5)
        raise AssertionError('the admin port never answered:\n' + ''.join(self.lines[-20:]))

    def wait_listening(self, seconds=30):
        host, port = self.main.rsplit(':', 1)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError('nothing listens on ' + self.main)

    def stop(self):
        """Ctrl-C: the server drains, the supervisor removes its cgroup."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.pump.join(5)
        return self.proc.returncode


def load(serve):
    """scripts/load --quick against the server; returns its output."""
    env = dict(os.environ, TARGET='http://' + serve.main, ADMIN='http://' + serve.admin)
    run = subprocess.run([os.path.join(ROOT, 'scripts', 'load'), '--quick'], env=env,
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def plain_wrk(serve, seconds=8):
    """Plain wrk -c1000 (no script): 2xx answers per second and wrk's own Requests/sec."""
    serve.wait_listening()  # wrk gives up at once if nothing listens (a restart's back-off)
    out = subprocess.run(['wrk', '-t2', '-c1000', '-d%ds' % seconds, '--timeout', '2s',
                          'http://%s/work/io?ms=100' % serve.main],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    total = int(re.search(r'(\d+) requests in', out).group(1))
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    rps = float(re.search(r'Requests/sec:\s+([\d.]+)', out).group(1))
    return (total - (int(non2xx.group(1)) if non2xx else 0)) / seconds, rps, out


def figure(text, pattern):
    return float(re.search(pattern, text).group(1).replace(',', ''))


class ServeAndLoadTest(unittest.TestCase):
    def setUp(self):
        why = cgroup_unavailable()
        if why:
            self.skipTest('no memory cgroup can be made here: ' + why)
        if not shutil.which('wrk'):
            self.skipTest('wrk is missing')

    def test_the_readme_recipe_reads_the_right_way_in_every_mode(self):
        serve = Serve()
        try:
            results = {}
            for mode in ('bounded', 'thread_per_request', 'coroutine'):
                serve.switch(mode)
                before = serve.metrics().value('stampede_oom_kills_total') or 0
                out = load(serve)
                print('\n--- %s\n%s' % (mode, out))
                verdict = next(l for l in out.splitlines() if l.startswith('verdict: '))
                spike = next(l for l in out.splitlines() if l.startswith('spike '))
                self.assertIn("wrk's Requests/sec", spike)
                results[mode] = figure(spike, r'goodput ([\d,]+)/s')
                kills = (serve.metrics().value('stampede_oom_kills_total') or 0) - before
                if mode == 'bounded':
                    self.assertRegex(verdict, r'^verdict: bounded stayed up and served [\d,]+/s '
                                              r'\(\d+ % of the downstream\'s 320/s\)')
                    self.assertGreaterEqual(results[mode], 0.9 * CAPACITY, out)
                    self.assertEqual(kills, 0)
                else:
                    self.assertTrue(verdict.startswith('verdict: %s was OOM-killed' % mode), out)
                    self.assertGreaterEqual(kills, 1)
                    self.assertLess(results[mode], results['bounded'], out)
            log = ''.join(serve.lines)
            # Each kill is one line of the supervisor's, and the restart keeps the ports.
            self.assertRegex(log, r'serve: stampede OOM-killed \(the 1st OOM kill in its 192 MiB '
                                  r'cgroup\) after [\d.]+ s up; restarting in 1 s on the same ports')
            self.assertGreaterEqual(log.count('listening main=%s admin=%s' % (
                serve.main, serve.admin)), 2)
        finally:
            self.assertEqual(serve.stop(), 0, ''.join(serve.lines[-20:]))
        # Ctrl-C removed the cgroup the supervisor made.
        self.assertEqual(glob.glob('/sys/fs/cgroup/**/stampede-serve-%d' % serve.proc.pid,
                                   recursive=True), [])

    def test_plain_wrk_with_a_thousand_connections_reads_the_same(self):
        serve = Serve()
        try:
            ok = {}
            for mode in ('bounded', 'thread_per_request', 'coroutine'):
                serve.switch(mode)
                before = serve.metrics().value('stampede_oom_kills_total') or 0
                ok[mode], rps, out = plain_wrk(serve)
                kills = (serve.metrics().value('stampede_oom_kills_total') or 0) - before
                print('\nplain wrk -c1000, %s: %.0f 2xx/s, wrk\'s Requests/sec %.0f, %d OOM '
                      'kills' % (mode, ok[mode], rps, kills))
                if mode == 'bounded':
                    self.assertGreaterEqual(ok[mode], 0.9 * CAPACITY, out)
                    self.assertGreater(rps, 5 * ok[mode], 'wrk counts the 503s as answers')
                    self.assertEqual(kills, 0)
                else:
                    self.assertGreaterEqual(kills, 1, out)
                    self.assertLess(ok[mode], ok['bounded'], out)
        finally:
            self.assertEqual(serve.stop(), 0, ''.join(serve.lines[-20:]))


if __name__ == '__main__':
    unittest.main()
