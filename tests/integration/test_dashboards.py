"""The observability stack, checked without a Docker engine: the dashboard's structure,
docker-compose.yml and prometheus.yml validity, and every dashboard expression evaluated
by a real Prometheus scraping a real stampede under load in each mode."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import SOURCE, Server, in_threads, request_bytes, wait_for

DASHBOARD = os.path.join(SOURCE, 'dashboards', 'stampede.json')


def dashboard_expressions():
    """(where, expr) for every PromQL expression in the dashboard: targets, annotations,
    template variable queries (label_values(...) is Grafana's, checked by its metric)."""
    with open(DASHBOARD) as f:
        d = json.load(f)
    out = []
    for p in d['panels']:
        for t in p.get('targets', []):
            out.append(('panel %d %s' % (p['id'], p['title']), t['expr']))
    for a in d['annotations']['list']:
        if 'expr' in a:
            out.append(('annotation ' + a['name'], a['expr']))
    return d, out


def concrete(expr):
    """The dashboard's variables replaced as Grafana would with mode=All."""
    return expr.replace('$__rate_interval', '1m').replace('$mode', '.*')


def metric_names(expr):
    names = set(re.findall(r'\b((?:stampede|process)_[a-z_]+)', expr))
    return names


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class DashboardTest(unittest.TestCase):
    def test_dashboard_structure(self):
        d, exprs = dashboard_expressions()
        self.assertGreaterEqual(d['schemaVersion'], 36)
        ids = [p['id'] for p in d['panels']]
        self.assertEqual(len(ids), len(set(ids)), 'panel ids must be unique')
        for p in d['panels']:
            if p['type'] == 'row':
                continue
            self.assertEqual(p.get('datasource', {}).get('uid'), 'prometheus', p['title'])
            self.assertTrue(p.get('targets'), p['title'])
            self.assertTrue(p['fieldConfig']['defaults'].get('unit'), p['title'])
            self.assertTrue(p.get('description'), p['title'])
            for t in p['targets']:
                self.assertEqual(t.get('datasource', {}).get('uid'), 'prometheus')
        self.assertEqual([v['name'] for v in d['templating']['list']], ['mode'])
        self.assertGreater(len(exprs), 15)

    @unittest.skipUnless(shutil.which('docker-compose'), 'docker-compose (Debian) is missing')
    def test_compose_stampede_has_a_memory_limit_and_is_restarted_after_a_kill(self):
        out = subprocess.run(['docker-compose', 'config'], cwd=SOURCE, capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        # The stampede service's block: from its name to the next service.
        block = out.stdout[out.stdout.index('\n  stampede:\n'):]
        end = re.search(r'\n {0,2}[a-z]', block[1:])
        block = block[:end.start() + 1] if end else block
        self.assertRegex(block, r'\n    mem_limit: [\'"]?192m')
        self.assertIn('\n    restart: on-failure', block)

    @unittest.skipUnless(shutil.which('docker-compose'), 'docker-compose (Debian) is missing')
    def test_docker_compose_config_is_valid(self):
        out = subprocess.run(['docker-compose', 'config', '--quiet'], cwd=SOURCE,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)

    @unittest.skipUnless(shutil.which('promtool'), 'promtool (Debian: prometheus) is missing')
    def test_promtool_accepts_prometheus_yml(self):
        out = subprocess.run(['promtool', 'check', 'config',
                              os.path.join(SOURCE, 'dashboards', 'prometheus.yml')],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    @unittest.skipUnless(shutil.which('prometheus'), 'prometheus (Debian package) is missing')
    def test_every_dashboard_expression_returns_data(self):
        _, exprs = dashboard_expressions()
        config = ('mode: bounded\nreload:\n  poll_ms: 100\nbounded:\n  workers: 2\n'
                  '  queue_capacity: 1\n')
        with Server(config) as server:
            exported = {n for n, _, _ in server.metrics().samples}
            for where, expr in exprs:
                for name in metric_names(expr):
                    self.assertTrue(any(e == name or e.startswith(name + '_') for e in exported),
                                    '%s names %s, which stampede does not export' % (where, name))
            with _Prometheus(server.admin_port) as prom:
                self.assertTrue(wait_for(lambda: prom.query('up == 1'), timeout=30),
                                'Prometheus never scraped stampede')
                for mode in ('thread_per_request', 'blocking', 'bounded'):
                    server.write_config(config.replace('mode: bounded', 'mode: ' + mode))
                    self.assertTrue(wait_for(lambda: server.config()['mode'] == mode))
                    _load(server)
                time.sleep(3)  # a few more scrapes after the last load
                report = []
                empty = []
                for where, expr in exprs:
                    series = prom.query(concrete(expr))
                    report.append((len(series), where, expr))
                    if not series:
                        empty.append('%s: %s' % (where, expr))
                print('\nseries  where / expression')
                for n, where, expr in report:
                    print('%6d  %s\n        %s' % (n, where, expr))
                self.assertEqual(empty, [], 'dashboard expressions with no data')


def _load(server):
    """A couple of seconds of mixed traffic: work, overflow, impatient clients, fan-out."""
    def work(i):
        if i % 5 == 0:
            s = server.connect()
            s.sendall(request_bytes('/work/io?ms=400'))
            time.sleep(0.05)
            s.close()
            return None
        if i % 5 == 1:
            return server.get('/work/fanout?n=4&ms=20&parallel=1')
        if i % 5 == 2:
            return server.get('/work/cpu?ms=5')
        return server.get('/work/io?ms=150')
    in_threads(12, work)
    server.get('/nope')


class _Prometheus:
    def __init__(self, admin_port):
        self.dir = tempfile.mkdtemp(prefix='stampede-prom-')
        self.port = free_port()
        cfg = os.path.join(self.dir, 'prometheus.yml')
        with open(cfg, 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                    'scrape_configs:\n  - job_name: stampede\n    scrape_timeout: 1s\n'
                    '    static_configs:\n      - targets: ["127.0.0.1:%d"]\n' % admin_port)
        self.log = open(os.path.join(self.dir, 'prometheus.log'), 'w')
        self.proc = subprocess.Popen(
            ['prometheus', '--config.file=' + cfg, '--storage.tsdb.path=' + self.dir + '/data',
             '--web.listen-address=127.0.0.1:%d' % self.port, '--log.level=warn'],
            stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self):
        ready = wait_for(self._ready, timeout=30, interval=0.2)
        if not ready:
            self.__exit__()
            raise RuntimeError('prometheus did not become ready; log in ' + self.dir)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _ready(self):
        try:
            with urllib.request.urlopen('http://127.0.0.1:%d/-/ready' % self.port, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        url = 'http://127.0.0.1:%d/api/v1/query?%s' % (
            self.port, urllib.parse.urlencode({'query': expr}))
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body['status'] != 'success':
            raise AssertionError('query failed: %s: %s' % (expr, body))
        return body['data']['result']


if __name__ == '__main__':
    unittest.main()
