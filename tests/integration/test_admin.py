"""The admin surface: loopback by default, a token when configured (and required off
loopback), no secrets in /config, answers while the main port is blocked, and the presenter's
annotations (POST /annotations) with their bad input."""

import json
import subprocess
import threading
import time
import unittest

from harness import BINARY, Server, wait_for


def annotate(server, body, **kw):
    return server.admin_post('/annotations', body=body if isinstance(body, (str, bytes))
                             else json.dumps(body),
                             headers=dict({'Content-Type': 'application/json'}, **kw))


class AdminTest(unittest.TestCase):
    def test_token_is_required_when_set(self):
        env = {'STAMPEDE_ADMIN_TOKEN': 's3cret-token'}
        with Server('mode: bounded\n', env=env) as server:
            self.assertEqual(server.admin_get('/metrics').status, 401)
            self.assertEqual(server.admin_get('/config', headers={
                'Authorization': 'Bearer wrong'}).status, 401)
            self.assertEqual(server.admin_get('/config', headers={
                'Authorization': 'Bearer s3cret-token-and-more'}).status, 401)
            ok = server.admin_get('/config', headers={'Authorization': 'Bearer s3cret-token'})
            self.assertEqual(ok.status, 200)
            self.assertNotIn('s3cret', ok.body, '/config never shows the token')
            self.assertEqual(ok.json()['admin']['token'], '(set)')

    def test_non_loopback_admin_without_token_refuses_to_start(self):
        server = Server('admin:\n  listen: 0.0.0.0:0\n')
        out = subprocess.run([BINARY, '--config', server.config_path, '--listen', '127.0.0.1:0'],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2)
        self.assertIn(server.config_path + ': admin.token: must be set', out.stderr)

    def test_admin_endpoints_and_methods(self):
        with Server('mode: bounded\n') as server:
            self.assertEqual(server.admin_get('/healthz').status, 200)
            self.assertEqual(server.admin_get('/nope').status, 404)
            self.assertEqual(server.admin_get('/metrics', method='POST').status, 405)

    def test_admin_answers_while_the_main_port_is_blocked(self):
        with Server('mode: blocking\n') as server:
            t = threading.Thread(target=lambda: server.get('/work/cpu?ms=1500'))
            t.start()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', state='running') == 1))
            r = server.admin_get('/metrics')
            self.assertEqual(r.status, 200)
            self.assertLess(r.elapsed, 0.5)
            t.join()

    def test_the_board_takes_start_event_and_verdict_and_exports_them(self):
        with Server('mode: coroutine\n') as server:
            self.assertEqual(server.admin_get('/annotations').json(),
                             {'banner': None, 'events': []})
            self.assertEqual(annotate(server, {'kind': 'start', 'title': 'lesson x',
                                               'predict': 'guess', 'watch': 'the chart'}).status,
                             200)
            self.assertEqual(annotate(server, {'kind': 'event', 'title': 'variant b'}).status, 200)
            board = server.admin_get('/annotations').json()
            self.assertEqual(board['banner']['kind'], 'start')
            self.assertEqual(board['banner']['predict'], 'guess')
            self.assertEqual([e['title'] for e in board['events']], ['lesson x', 'variant b'])
            self.assertEqual(annotate(server, {'kind': 'verdict', 'title': 'lesson x',
                                               'text': 'it failed'}).status, 200)
            banner = server.admin_get('/annotations').json()['banner']
            # The verdict keeps the prediction beside it.
            self.assertEqual((banner['kind'], banner['text'], banner['predict']),
                             ('verdict', 'it failed', 'guess'))
            m = server.metrics()
            self.assertEqual(m.value('stampede_annotations_total'), 3)
            t = m.value('stampede_annotation_time_seconds', kind='event', title='variant b')
            self.assertLess(abs(t - time.time()), 60)
            # The same title twice is one series (a scrape with a duplicate is refused).
            annotate(server, {'kind': 'event', 'title': 'variant b'})
            self.assertEqual(len([1 for l, _ in server.metrics().matching(
                'stampede_annotation_time_seconds') if l.get('title') == 'variant b']), 1)

    def test_bad_annotations_get_400_naming_what_is_wrong_and_change_nothing(self):
        with Server('mode: bounded\n') as server:
            for body, says in (('not json', 'JSON object'), ('[1]', 'JSON object'),
                               ({'kind': 'start'}, 'title is required'),
                               ({'kind': 'begin', 'title': 'x'}, 'kind must be one of'),
                               ({'kind': 'start', 'title': 'x', 'colour': 'red'},
                                'unknown key: colour'),
                               ({'kind': 'start', 'title': 5}, 'title must be a string'),
                               ({'kind': 'start', 'title': 'x' * 201}, 'title is longer')):
                r = annotate(server, body)
                self.assertEqual(r.status, 400, body)
                self.assertIn(says, r.json()['error'], body)
            r = annotate(server, {'kind': 'start', 'title': 'x', 'text': 'y' * 20000})
            self.assertEqual(r.status, 413)
            self.assertEqual(server.admin_get('/annotations').json()['events'], [])
            self.assertEqual(server.admin_get('/annotations?x=1').status, 200)
            self.assertEqual(server.admin_post('/metrics').status, 405)

    def test_with_a_token_posting_needs_it(self):
        with Server('mode: bounded\nadmin:\n  token: sesame\n') as server:
            self.assertEqual(annotate(server, {'kind': 'start', 'title': 'x'}).status, 401)
            self.assertEqual(annotate(server, {'kind': 'start', 'title': 'x'},
                                      Authorization='Bearer sesame').status, 200)


if __name__ == '__main__':
    unittest.main()
