"""The observability stack, checked without a Docker engine: the dashboard's structure,
docker-compose.yml and prometheus.yml validity, and every dashboard expression evaluated
by a real Prometheus scraping a real stampede under load in each mode."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from harness import BINARY, SOURCE, Server, in_threads, request_bytes, wait_for

DASHBOARD = os.path.join(SOURCE, 'dashboards', 'stampede.json')
FLEET_DASHBOARD = os.path.join(SOURCE, 'dashboards', 'fleet.json')
# Annotations that mark an event (an OOM kill) hold data only when one happens: their
# expression is checked without its "> 0".
EVENTS = ('OOM kills',)


def dashboard_expressions(path=DASHBOARD):
    """(where, expr) for every PromQL expression in the dashboard: targets, annotations,
    template variable queries (label_values(...) is Grafana's, checked by its metric)."""
    with open(path) as f:
        d = json.load(f)
    out = []
    for p in d['panels']:
        for t in p.get('targets', []):
            out.append(('panel %d %s' % (p['id'], p['title']), t['expr']))
    for a in d['annotations']['list']:
        if 'expr' in a:
            expr = a['expr']
            if a['name'] in EVENTS:
                expr = re.sub(r' > 0$', '', expr)
            out.append(('annotation ' + a['name'], expr))
    return d, out


def limited(config):
    """A Server inside a memory cgroup when one can be made (root), so that the metrics that
    exist only under a limit (stampede_memory_limit_bytes) are there to check; the cgroup is
    removed by close(). Without one, a plain Server."""
    from stampede_load import lab
    cg = lab.MemoryCgroup(1 << 30, 'stampede-dashboards-%d' % os.getpid())
    if not cg.active:
        return Server(config), cg
    return Server(config, preexec_fn=cg.preexec()), cg


def exported_by_every_mode(server, config):
    """The names the server exports once every mode has run: a mode's own metrics (bounded's
    queue, thread_per_request's thread starts) are made by its policy, when it first runs.
    Ends in the mode `config` names."""
    first = re.search(r'^mode: (\w+)', config, re.M).group(1)
    for mode in ('blocking', 'thread_per_request', 'coroutine', 'bounded', first):
        server.write_config(re.sub(r'^mode: \w+', 'mode: ' + mode, config, flags=re.M))
        server.signal(signal.SIGHUP)
        assert wait_for(lambda: server.config()['mode'] == mode), mode
    return {n for n, _, _ in server.metrics().samples}


def model_memory_limit_mb():
    done = subprocess.run([BINARY, '--config', os.path.join(SOURCE, 'config', 'stampede.yaml'),
                           '--print-config'], capture_output=True, text=True, timeout=30)
    return json.loads(done.stdout)['supervisor']['memory_limit_mb']


def service_block(config, name):
    """One service's block of `docker-compose config` output."""
    block = config[config.index('\n  %s:\n' % name) + 1:]
    end = re.search(r'\n {0,2}[a-z]', block[1:])
    return block[:end.start() + 1] if end else block


def concrete(expr):
    """The dashboard's variables replaced as Grafana would with mode=All."""
    return expr.replace('$__rate_interval', '1m').replace('$mode', '.*')


def metric_names(expr):
    names = set(re.findall(r'\b((?:stampede|process)_[a-z_]+)', expr))
    return names


def promtool_check(path):
    """promtool check config on `path`, its token file (written by the container's entrypoint)
    made here: '' if it passes, else what promtool said."""
    folder = tempfile.mkdtemp(prefix='stampede-promtool-')
    token = os.path.join(folder, 'admin-token')
    with open(token, 'w') as f:
        f.write('a-token')
    with open(path) as f:
        text = f.read()
    assert 'credentials_file: /prometheus/admin-token' in text, path
    copy = os.path.join(folder, os.path.basename(path))
    with open(copy, 'w') as f:
        f.write(text.replace('/prometheus/admin-token', token))
    out = subprocess.run(['promtool', 'check', 'config', copy], capture_output=True, text=True,
                         timeout=60)
    shutil.rmtree(folder)
    return '' if out.returncode == 0 else out.stdout + out.stderr


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

    def test_both_dashboards_refresh_as_grafana_allows_and_mark_oom_kills(self):
        for path in (DASHBOARD, FLEET_DASHBOARD):
            d, _ = dashboard_expressions(path)
            # Grafana's default min_refresh_interval is 5 s: a faster one is refused.
            for every in [d['refresh']] + d['timepicker']['refresh_intervals']:
                seconds = int(every[:-1]) * {'s': 1, 'm': 60}[every[-1]]
                self.assertGreaterEqual(seconds, 5, path)
            oom = [a for a in d['annotations']['list'] if a['name'] == 'OOM kills']
            self.assertEqual(len(oom), 1, path)
            self.assertIn('stampede_oom_kills_total', oom[0]['expr'])
            shown = [a for a in d['annotations']['list'] if a['name'] == 'Presenter']
            self.assertEqual(len(shown), 1, path)
            self.assertTrue(shown[0]['useValueForTime'], path)

    def test_the_fleet_dashboard_reads_the_fleet_prometheus_and_metrics_that_exist(self):
        d, exprs = dashboard_expressions(FLEET_DASHBOARD)
        with open(os.path.join(SOURCE, 'dashboards', 'provisioning', 'datasources',
                               'prometheus.yml')) as f:
            self.assertIn('uid: prometheus-fleet', f.read())
        for p in d['panels']:
            if p['type'] != 'row':
                self.assertEqual(p['datasource']['uid'], 'prometheus-fleet', p['title'])
                self.assertTrue(p.get('description'), p['title'])
        server, cg = limited('mode: bounded\n')
        try:
            with server:
                server.admin_post('/annotations', body=json.dumps(
                    {'kind': 'start', 'title': 'the fleet dashboards test'}))
                exported = exported_by_every_mode(server, 'mode: bounded\n')
        finally:
            cg.close()
        if not cg.active:
            exported.add('stampede_memory_limit_bytes')  # exported only under a limit
        for where, expr in exprs:
            for name in metric_names(expr):
                self.assertTrue(any(e == name or e.startswith(name + '_') for e in exported),
                                '%s names %s, which stampede does not export' % (where, name))
            for name in re.findall(r'\b(haproxy_[a-z_]+)', expr):
                # HAProxy 2.6's exporter's names (its documentation's list).
                self.assertIn(name, ('haproxy_backend_http_responses_total',
                                     'haproxy_server_status'), where)

    @unittest.skipUnless(shutil.which('docker-compose'), 'docker-compose (Debian) is missing')
    def test_compose_runs_the_model_as_scripts_serve_does_with_its_memory_limit(self):
        out = subprocess.run(['docker-compose', '--profile', 'fleet', '--profile', 'load',
                              'config'], cwd=SOURCE, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        limit = model_memory_limit_mb()
        self.assertEqual(limit, 192)
        for name in ('stampede', 'fleet-replica1', 'fleet-replica2', 'fleet-replica3'):
            block = service_block(out.stdout, name)
            # The same memory limit as scripts/serve's cgroup: the model's.
            self.assertRegex(block, r'\n    mem_limit: [\'"]?%dm' % limit, name)
            self.assertIn('\n    restart: on-failure', block)
            self.assertIn('/config:/etc/stampede:ro', block)
            # One token, from one place.
            self.assertIn('STAMPEDE_ADMIN_TOKEN: stampede-demo-token', block)
        with open(os.path.join(SOURCE, 'Dockerfile')) as f:
            dockerfile = f.read()
        runtime = dockerfile[dockerfile.index('AS runtime'):dockerfile.index('AS loadgen')]
        # The same supervisor as scripts/serve, on the same file (the host's, mounted).
        self.assertIn('ENTRYPOINT ["python3", "-m", "stampede_load.lab.serve"', runtime)
        self.assertIn('CMD ["--config", "/etc/stampede/stampede.yaml"', runtime)
        with open(os.path.join(SOURCE, 'scripts', 'serve')) as f:
            self.assertIn('python3 -m stampede_load.lab.serve "$@"', f.read())
        with open(os.path.join(SOURCE, 'docker-compose.yml')) as f:
            self.assertEqual(f.read().count('stampede-demo-token'), 1, 'the token, once')
        # The load generators run scripts/load, as a user does on the host.
        self.assertIn('ENTRYPOINT ["/bin/sh", "/stampede/scripts/load"]', dockerfile)
        for name in ('loadgen', 'fleet-loadgen'):
            self.assertIn('target: loadgen', service_block(out.stdout, name))

    @unittest.skipUnless(shutil.which('docker-compose'), 'docker-compose (Debian) is missing')
    def test_docker_compose_config_is_valid(self):
        out = subprocess.run(['docker-compose', 'config', '--quiet'], cwd=SOURCE,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)

    @unittest.skipUnless(shutil.which('promtool'), 'promtool (Debian: prometheus) is missing')
    def test_promtool_accepts_prometheus_yml(self):
        self.assertEqual(promtool_check(os.path.join(SOURCE, 'dashboards', 'prometheus.yml')),
                         '')

    @unittest.skipUnless(shutil.which('prometheus'), 'prometheus (Debian package) is missing')
    def test_every_dashboard_expression_returns_data(self):
        _, exprs = dashboard_expressions()
        config = ('mode: bounded\nreload:\n  poll_ms: 100\nbounded:\n  workers: 2\n'
                  '  queue_capacity: 1\n')
        server, cg = limited(config)
        if not cg.active:
            self.skipTest('no memory cgroup here (%s): stampede_memory_limit_bytes would be '
                          'absent' % cg.why)
        self.addCleanup(cg.close)
        with server:
            # What a lesson posts: the presenter's annotation has data from then on.
            posted = server.admin_post('/annotations', body=json.dumps(
                {'kind': 'start', 'title': 'the dashboards test'}),
                headers={'Content-Type': 'application/json'})
            self.assertEqual(posted.status, 200, posted.body)
            exported = exported_by_every_mode(server, config)
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
