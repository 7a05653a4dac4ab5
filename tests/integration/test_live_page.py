"""The live page on the admin port, loaded in headless Chromium while stampede is under load
and switched from one mode to another: every chart draws, the switch is marked, the page has
no errors, and what it shows agrees with /metrics. Also the token rules and the data endpoint."""

import html.parser
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import Server, wait_for

ARTIFACTS = os.environ.get('STAMPEDE_ARTIFACTS') or tempfile.mkdtemp(prefix='stampede-live-')
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')

CONFIG = ('mode: %s\nreload:\n  poll_ms: 100\nbounded:\n  workers: 2\n  queue_capacity: 2\n'
          'downstream:\n  capacity: 4\nwork:\n  request_kb: 16\n'
          'limiter:\n  algorithm: gradient2\n  initial: 6\n  min: 2\n  max: 50\n')


class Probe(html.parser.HTMLParser):
    """Collects the page's probe attributes and the figures it shows (data-k / data-value)."""

    def __init__(self):
        super().__init__()
        self.probe = {}
        self.shown = {}
        self.token_hidden = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id') == 'probe':
            self.probe = {k[5:]: v for k, v in a.items() if k.startswith('data-')}
        if a.get('id') == 'token':
            self.token_hidden = 'hidden' in a
        if 'data-k' in a and a.get('data-value'):
            self.shown[a['data-k']] = float(a['data-value'])


def chromium(url, *flags, budget_ms=3000):
    """Runs headless Chromium on url; returns (stdout, stderr)."""
    run = subprocess.run(
        [CHROMIUM, '--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
         '--no-first-run', '--disable-extensions', '--enable-logging=stderr', '--v=0',
         '--user-data-dir=' + tempfile.mkdtemp(prefix='stampede-chromium-'),
         '--virtual-time-budget=%d' % budget_ms] + list(flags) + [url],
        capture_output=True, text=True, timeout=120)
    return run.stdout, run.stderr


def console_errors(stderr):
    return [line for line in stderr.splitlines()
            if 'CONSOLE' in line and ('Uncaught' in line or 'Error' in line)]


class LivePageTest(unittest.TestCase):
    def setUp(self):
        if CHROMIUM is None:
            self.fail('chromium is not installed (scripts/setup installs it)')

    def load(self, server, stop):
        """Keeps 12 clients busy with short requests (2xx, and 503s from the small pool)."""
        def client():
            while not stop.is_set():
                try:
                    server.get('/work/io?ms=30', timeout=10)
                except OSError:
                    pass
        threads = [threading.Thread(target=client) for _ in range(12)]
        for t in threads:
            t.start()
        return threads

    def test_page_draws_every_chart_marks_the_switch_and_agrees_with_metrics(self):
        with Server(CONFIG % 'bounded') as server:
            stop = threading.Event()
            threads = self.load(server, stop)
            try:
                time.sleep(3)
                server.write_config(CONFIG % 'coroutine')
                self.assertTrue(wait_for(lambda: server.metrics().value(
                    'stampede_mode_info', mode='coroutine') == 1))
                time.sleep(3)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            time.sleep(2.5)  # a quiet second or two: the last sample and /metrics can agree
            url = 'http://127.0.0.1:%d/' % server.admin_port
            dom, err = chromium(url, '--dump-dom')
            m = server.metrics()
            shot = os.path.join(ARTIFACTS, 'live-page.png')
            os.makedirs(ARTIFACTS, exist_ok=True)
            chromium(url, '--window-size=1400,2300', '--screenshot=' + shot)
            print('\nscreenshot: %s' % shot)
            self.assertGreater(os.path.getsize(shot), 20000)

            p = Probe()
            p.feed(dom)
            self.assertEqual(p.probe.get('state'), 'live', p.probe)
            self.assertEqual(p.probe.get('charts'), '10', 'bounded ran: its queue chart is on')
            self.assertIn('id="chart-queue"', dom)
            self.assertIn('503 queue_full', dom)
            self.assertEqual(p.probe.get('drawn'), '10', 'every chart drew data points')
            self.assertGreaterEqual(int(p.probe.get('points', 0)), 5)
            self.assertGreaterEqual(int(p.probe.get('markers', 0)), 1, 'the mode switch is marked')
            self.assertEqual(p.probe.get('errors'), '0')
            self.assertEqual(console_errors(err), [])
            # The badge names the mode, in the colour of its place in the server's list of modes
            # (coroutine is the fourth: #9467bd).
            self.assertIn('<span id="mode" class="mode" style="background: rgb(148, 103, 189);">'
                          'coroutine</span>', dom)
            self.assertIn("sed -i 's/^mode: .*/mode: ", dom)

            # What the page shows, against /metrics read just after.
            shown = p.shown
            self.assertEqual(shown['ds_capacity'], m.value('stampede_downstream_capacity'))
            self.assertEqual(shown['os_threads'], m.value('stampede_os_threads'))
            self.assertEqual(shown['limit'], m.value('stampede_limit', mode='coroutine'))
            self.assertGreaterEqual(shown['limit'], 2)
            self.assertEqual(shown['rejected_total'], m.value('stampede_rejected_total'))
            self.assertGreater(shown['rejected_total'], 0)
            self.assertAlmostEqual(shown['wasted_total'],
                                   m.value('stampede_wasted_work_seconds_total'), places=3)
            rss = m.value('process_resident_memory_bytes') / 2**20
            self.assertLess(abs(shown['rss_mib'] - rss), max(2.0, 0.1 * rss))

    def test_the_banner_shows_what_runs_then_the_verdict_and_the_events_mark_the_charts(self):
        with Server(CONFIG % 'bounded') as server:
            def post(**body):
                r = server.admin_post('/annotations', body=json.dumps(body),
                                      headers={'Content-Type': 'application/json'})
                self.assertEqual(r.status, 200, r.body)
            post(kind='start', title='lesson global-lock', predict='How many a second?',
                 watch='requests per second by status')
            stop = threading.Event()
            threads = self.load(server, stop)
            try:
                time.sleep(2)
                post(kind='event', title='variant narrow')
                time.sleep(2)
            finally:
                stop.set()
                for t in threads:
                    t.join(30)
            url = 'http://127.0.0.1:%d/' % server.admin_port
            dom, err = chromium(url, '--dump-dom')
            p = Probe()
            p.feed(dom)
            self.assertEqual(p.probe.get('banner'), 'start', p.probe)
            self.assertEqual(p.probe.get('events'), '2', p.probe)
            self.assertIn('Running: lesson global-lock', dom)
            self.assertIn('How many a second?', dom)
            self.assertEqual(console_errors(err), [])
            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, 'live-page-banner.png')
            chromium(url, '--window-size=1400,1000', '--screenshot=' + shot)
            print('\nscreenshot, running: %s' % shot)
            post(kind='verdict', title='lesson global-lock', text='50/s: one at a time')
            dom, err = chromium(url, '--dump-dom')
            p = Probe()
            p.feed(dom)
            self.assertEqual(p.probe.get('banner'), 'verdict', p.probe)
            self.assertIn('Ended: lesson global-lock', dom)
            self.assertIn('50/s: one at a time', dom)
            self.assertIn('How many a second?', dom)  # the prediction stays beside it
            shot = os.path.join(ARTIFACTS, 'live-page-verdict.png')
            chromium(url, '--window-size=1400,1000', '--screenshot=' + shot)
            print('screenshot, ended: %s' % shot)
            self.assertGreater(os.path.getsize(shot), 20000)

    def test_with_a_token_the_page_asks_for_it_and_shows_no_data(self):
        with Server(CONFIG % 'bounded' + 'admin:\n  token: s3cret-token\n') as server:
            r = server._request(server.admin_port, '/')
            self.assertEqual(r.status, 401)
            self.assertIn('text/html', r.headers['content-type'])
            self.assertIn('id="tokenform"', r.body)
            self.assertEqual(server._request(server.admin_port, '/live/data').status, 401)
            ok = server._request(server.admin_port, '/live/data',
                                 headers={'Authorization': 'Bearer s3cret-token'})
            self.assertEqual(ok.status, 200)
            self.assertIn('samples', json.loads(ok.body))
            dom, err = chromium('http://127.0.0.1:%d/' % server.admin_port, '--dump-dom')
            p = Probe()
            p.feed(dom)
            self.assertEqual(p.probe.get('state'), 'token')
            self.assertEqual(p.probe.get('points'), '0', 'no data without the token')
            self.assertEqual(p.probe.get('drawn'), '0')
            self.assertFalse(p.token_hidden, 'the prompt is shown')
            self.assertEqual(p.probe.get('errors'), '0')

    def test_an_open_page_keeps_its_history_across_a_restart_and_marks_it(self):
        # The page as the server serves it, then a stand-in for the admin port that answers
        # /live/data as a server that restarts (a new start time, sequence numbers from 1) in
        # another mode would: what an open page sees when the demo's next server, or one
        # restarted after an OOM kill, takes the port.
        with Server(CONFIG % 'bounded') as server:
            page = server._request(server.admin_port, '/').body.encode()
        t0 = time.time() - 60
        runs = [(t0, 'bounded', [t0 + i for i in range(1, 6)]),
                (t0 + 30, 'coroutine', [t0 + 30 + i for i in range(1, 4)])]
        calls = []

        def sample(seq, t, mode):
            s = {'seq': seq, 't': t, 'mode': mode, 'totals': {'wasted_seconds': 0, 'rejected': 0},
                 # The server's own count of OOM kills in its cgroup: the second run's says
                 # the first one was killed.
                 'oom_kills': 2 if mode == 'coroutine' else 1}
            for k in ('tasks_running', 'tasks_queued', 'os_threads', 'rps_2xx', 'rps_499',
                      'rps_other', 'rps_503_other', 'rejected_per_s', 'cancelled_per_s',
                      'wasted_per_s', 'cpu_cores', 'p50_ms', 'p99_ms', 'queue_depth',
                      'queue_capacity', 'pool_workers', 'ds_in_use', 'ds_waiting',
                      'ds_capacity', 'rss_bytes', 'memory_limit_bytes',
                      'request_memory_bytes', 'task_memory_bytes', 'connections', 'limit',
                      'limit_inflight'):
                s[k] = seq
            s['rps_503'] = {'queue_full': 1}
            return s

        # What a server that has run bounded says of its modes: one chart of a mode's own.
        VOCABULARY = {'modes': ['blocking', 'thread_per_request', 'bounded', 'coroutine'],
                      'reasons': ['shutting_down', 'limit', 'queue_full'],
                      'charts': [{'id': 'queue', 'title': 'Queue', 'hint': 'a mode\'s own',
                                  'series': [['queued', 'queue_depth'],
                                             ['capacity', 'queue_capacity']]}]}

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == '/':
                    body, kind = page, 'text/html; charset=utf-8'
                else:
                    calls.append(self.path)
                    started, mode, times = runs[0] if len(calls) <= 3 else runs[1]
                    after = int(self.path.split('after=')[1]) if 'after=' in self.path else 0
                    samples = [sample(i + 1, t, mode) for i, t in enumerate(times) if i + 1 > after]
                    body = json.dumps({'interval_s': 1, 'started': started, 'config': '',
                                       'vocabulary': VOCABULARY, 'samples': samples}).encode()
                    kind = 'application/json'
                self.send_response(200)
                self.send_header('Content-Type', kind)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        stand_in = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        thread = threading.Thread(target=stand_in.serve_forever)
        thread.start()
        try:
            dom, err = chromium('http://127.0.0.1:%d/' % stand_in.server_address[1],
                                '--dump-dom', budget_ms=8000)
        finally:
            stand_in.shutdown()
            thread.join()
        p = Probe()
        p.feed(dom)
        self.assertGreater(len(calls), 3, 'the page kept polling')
        self.assertEqual(p.probe.get('restarts'), '1')
        self.assertEqual(p.probe.get('oom-kills'), '2', 'the restart is marked as OOM kill #2')
        self.assertEqual(p.probe.get('points'), '8', 'both runs\' samples kept: 5 + 3')
        self.assertEqual(p.probe.get('markers'), '1', 'the mode change between the runs')
        self.assertEqual(p.probe.get('drawn'), '10')
        self.assertEqual(p.probe.get('errors'), '0')
        self.assertEqual(console_errors(err), [])

    def test_data_endpoint_keeps_history_and_agrees_with_metrics(self):
        with Server(CONFIG % 'coroutine') as server:
            for _ in range(20):
                server.get('/work/io?ms=1')
            self.assertTrue(wait_for(lambda: len(json.loads(server._request(
                server.admin_port, '/live/data').body)['samples']) >= 3, timeout=10))
            time.sleep(1.2)
            data = server._request(server.admin_port, '/live/data')
            self.assertEqual(data.status, 200)
            self.assertEqual(data.headers['cache-control'], 'no-store')
            body = json.loads(data.body)
            self.assertEqual(body['config'], os.path.abspath(server.config_path))
            samples = body['samples']
            seqs = [s['seq'] for s in samples]
            self.assertEqual(seqs, sorted(seqs))
            last = samples[-1]
            m = server.metrics()
            self.assertEqual(last['mode'], 'coroutine')
            self.assertEqual(last['totals']['requests'],
                             m.value('stampede_http_requests_total'))
            self.assertEqual(last['ds_capacity'], 4)
            # The modes' vocabulary: coroutine's reasons, since it ran; bounded's not, nor its
            # queue chart, since it never did.
            vocabulary = body['vocabulary']
            self.assertEqual(sorted(vocabulary['modes']),
                             ['blocking', 'bounded', 'coroutine', 'thread_per_request'])
            self.assertIn('task_limit', vocabulary['reasons'])
            self.assertIn('limit', vocabulary['reasons'])
            self.assertNotIn('queue_full', vocabulary['reasons'])
            self.assertEqual(vocabulary['charts'], [])
            # Only what came after a sequence number.
            newer = json.loads(server._request(
                server.admin_port, '/live/data?after=%d' % seqs[-2]).body)['samples']
            self.assertEqual([s['seq'] for s in newer][:1], [seqs[-1]])
            page = server._request(server.admin_port, '/')
            self.assertEqual(page.status, 200)
            self.assertEqual(page.headers['content-type'], 'text/html; charset=utf-8')
            self.assertEqual(page.headers['cache-control'], 'no-cache')
            self.assertNotIn('src="http', page.body, 'nothing fetched from elsewhere')


if __name__ == '__main__':
    unittest.main()
