"""The /metrics contract: names dashboards and load tests read, and format validity."""

import shutil
import subprocess
import unittest

from harness import Server, wait_for

CONTRACT = [
    'stampede_mode_info', 'stampede_tasks', 'stampede_tasks_started_total', 'stampede_os_threads',
    'stampede_http_requests_total',
    'stampede_http_request_duration_seconds_bucket',
    'stampede_http_success_duration_seconds_bucket', 'stampede_queue_depth',
    'stampede_queue_capacity', 'stampede_pool_workers', 'stampede_queue_wait_seconds_bucket',
    'stampede_rejected_total', 'stampede_cancelled_total', 'stampede_client_disconnects_total',
    'stampede_wasted_work_seconds_total', 'stampede_connections_active',
    'stampede_config_reloads_total', 'process_cpu_seconds_total', 'process_resident_memory_bytes',
    'process_virtual_memory_bytes', 'process_open_fds', 'process_max_fds',
    'process_start_time_seconds', 'stampede_downstream_capacity', 'stampede_downstream_in_use',
    'stampede_downstream_waiting', 'stampede_downstream_wait_seconds_bucket',
    'stampede_request_memory_bytes', 'stampede_request_memory_failures_total',
]


class MetricsTest(unittest.TestCase):
    def test_contract_names_are_exported(self):
        # thread_spawn_seconds is thread_per_request's own: its policy makes it, when it runs.
        with Server('mode: thread_per_request\n') as server:
            self.assertTrue(server.metrics().has('stampede_thread_spawn_seconds_bucket'))
        with Server('mode: bounded\n') as server:
            server.get('/healthz')
            # A request is counted once its answer is written: the client may see it first.
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_http_requests_total', mode='bounded', handler='healthz',
                code='200') == 1))
            m = server.metrics()
            for name in CONTRACT:
                self.assertTrue(m.has(name), name)
            self.assertEqual(m.value('stampede_mode_info', mode='bounded'), 1)
            self.assertEqual(m.value('stampede_http_requests_total', mode='bounded',
                                     handler='healthz', code='200'), 1)
            buckets = [l['le'] for l, _ in m.matching(
                'stampede_http_request_duration_seconds_bucket', mode='bounded', handler='io')]
            self.assertIn('30', [b.rstrip('0').rstrip('.') if '.' in b else b for b in buckets])

    @unittest.skipUnless(shutil.which('promtool'), 'promtool (Debian package prometheus) missing')
    def test_promtool_accepts_the_exposition(self):
        with Server('mode: thread_per_request\n') as server:
            server.get('/work/io?ms=1')
            server.get('/lab/counter?n=5&variant=owner')
            server.admin_post('/annotations', body='{"kind":"start","title":"promtool"}')
            text = server.admin_get('/metrics').body
            out = subprocess.run(['promtool', 'check', 'metrics'], input=text,
                                 capture_output=True, text=True, timeout=30)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertEqual((out.stdout + out.stderr).strip(), '')

if __name__ == '__main__':
    unittest.main()
