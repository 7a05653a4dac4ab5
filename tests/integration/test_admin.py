"""The admin surface: loopback by default, a token when configured (and required off
loopback), no secrets in /config, answers while the main port is blocked."""

import subprocess
import threading
import unittest

from harness import BINARY, Server, wait_for


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


if __name__ == '__main__':
    unittest.main()
