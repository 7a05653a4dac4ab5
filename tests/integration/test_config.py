"""Config: live mode switches (file edit, SIGHUP), bad config at start and at reload."""

import os
import signal
import subprocess
import threading
import unittest

from harness import BINARY, SOURCE, Server, wait_for


class ConfigTest(unittest.TestCase):
    def test_mode_switch_by_editing_the_file_keeps_in_flight_requests(self):
        with Server('mode: bounded\nreload:\n  poll_ms: 100\n') as server:
            slow = {}
            t = threading.Thread(target=lambda: slow.update(r=server.get('/work/io?ms=1200')))
            t.start()
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', mode='bounded', state='running') == 1))
            server.write_config('mode: thread_per_request\nreload:\n  poll_ms: 100\n')
            self.assertTrue(wait_for(lambda: server.config()['mode'] == 'thread_per_request'))
            r = server.get('/work/io?ms=1')
            self.assertEqual(r.headers['x-stampede-mode'], 'thread_per_request')
            t.join()
            self.assertEqual(slow['r'].status, 200, 'the in-flight request finished')
            self.assertEqual(slow['r'].json()['mode'], 'bounded', 'under the mode it started in')
            m = server.metrics()
            self.assertEqual(m.value('stampede_mode_info', mode='thread_per_request'), 1)
            self.assertEqual(m.value('stampede_mode_info', mode='bounded'), 0)
            self.assertEqual(m.value('stampede_config_reloads_total', result='ok'), 1)

    def test_mode_switch_by_sighup(self):
        with Server('mode: bounded\nreload:\n  watch: false\n') as server:
            server.write_config('mode: blocking\nreload:\n  watch: false\n')
            server.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: server.config()['mode'] == 'blocking'))
            self.assertEqual(server.get('/healthz').headers['x-stampede-mode'], 'blocking')

    def test_live_pool_settings_apply(self):
        with Server('mode: bounded\nbounded:\n  workers: 2\nreload:\n  poll_ms: 100\n') as server:
            self.assertEqual(server.metrics().value('stampede_pool_workers'), 2)
            server.write_config('mode: bounded\nbounded:\n  workers: 6\n  queue_capacity: 7\n'
                                'reload:\n  poll_ms: 100\n')
            self.assertTrue(wait_for(lambda: server.metrics().value('stampede_pool_workers') == 6))
            self.assertEqual(server.metrics().value('stampede_queue_capacity'), 7)

    def test_a_toggle_an_override_masks_is_warned_of_and_config_shows_each_source(self):
        with Server('mode: bounded\nreload:\n  watch: false\n', args=['--workers', '3'],
                    env={'STAMPEDE_MODE': 'coroutine'}) as server:
            sources = server.config()['sources']
            self.assertEqual(sources['mode'], 'env STAMPEDE_MODE')
            self.assertEqual(sources['bounded.workers'], 'flag --workers')
            self.assertEqual(sources['reload.watch'], server.config_path + ':3')
            self.assertEqual(sources['labs.stock'], 'default')
            # The file's toggle: the variable keeps winning, and the log says so and why.
            server.write_config('mode: thread_per_request\nreload:\n  watch: false\n')
            server.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_config_reloads_total', result='ok') == 1))
            self.assertEqual(server.config()['mode'], 'coroutine')
            warning = [line for line in server.log if 'config reload: mode is' in line]
            self.assertEqual(len(warning), 1, ''.join(server.log))
            self.assertIn('thread_per_request in %s:1' % server.config_path, warning[0])
            self.assertIn('env STAMPEDE_MODE sets it to coroutine', warning[0])
            # A file that agrees with the override, or leaves the key out, masks nothing.
            server.write_config('mode: coroutine\nreload:\n  watch: false\n')
            server.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_config_reloads_total', result='ok') == 2))
            self.assertEqual(len([l for l in server.log if 'config reload: mode is' in l]), 1)
            self.assertFalse([l for l in server.log if 'bounded.workers is' in l])

    def test_bad_reload_keeps_the_running_config(self):
        with Server('mode: bounded\nreload:\n  watch: false\n') as server:
            server.write_config('mode: blocking\nbounded:\n  workers: lots\n')
            server.signal(signal.SIGHUP)
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_config_reloads_total', result='error') == 1))
            self.assertEqual(server.config()['mode'], 'bounded')
            self.assertEqual(server.get('/healthz').status, 200)
            log = ''.join(server.log)
            self.assertIn(server.config_path + ':3', log)
            self.assertIn('bounded.workers', log)

    def test_bad_config_at_start_names_file_line_and_key(self):
        server = Server('mode: bounded\nbounded:\n  queue_capacity: -1\n')
        server.start(expect_listening=False)
        self.assertEqual(server.wait_exit(10), 2)
        log = ''.join(server.log)
        self.assertIn(server.config_path + ':3', log)
        self.assertIn('bounded.queue_capacity', log)

    def test_unknown_key_at_start_is_an_error(self):
        server = Server('mode: bounded\nbounded:\n  wrokers: 3\n')
        server.start(expect_listening=False)
        self.assertEqual(server.wait_exit(10), 2)
        self.assertIn('bounded.wrokers: unknown key', ''.join(server.log))

    def test_check_config(self):
        shipped = os.path.join(SOURCE, 'config', 'stampede.yaml')
        ok = subprocess.run([BINARY, '--check-config', shipped], capture_output=True, text=True,
                            timeout=10)
        self.assertEqual(ok.returncode, 0, ok.stderr)
        server = Server('mode: fast\n')
        bad = subprocess.run([BINARY, '--check-config', server.config_path],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(bad.returncode, 2)
        self.assertIn(server.config_path + ':1: mode:', bad.stderr)

    def test_precedence_flag_over_env_over_file(self):
        env = {'STAMPEDE_BOUNDED_WORKERS': '3', 'STAMPEDE_MODE': 'blocking'}
        with Server('mode: bounded\nbounded:\n  workers: 2\n', args=['--mode', 'bounded'],
                    env=env) as server:
            c = server.config()
            self.assertEqual(c['bounded']['workers'], 3, 'env beats the file')
            self.assertEqual(c['mode'], 'bounded', 'a flag beats env')

    def test_help_lists_the_flags(self):
        out = subprocess.run([BINARY, '--help'], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0)
        for flag in ('--config', '--mode', '--listen', '--admin-listen', '--check-config'):
            self.assertIn(flag, out.stdout)


if __name__ == '__main__':
    unittest.main()
