"""Criticality through the real binary: the X-Stampede-Criticality header, shedding the lowest
first near the limit in every mode that has one, the shares changed live, a bad header or
config answered clearly, and the admissions counted by criticality."""

import unittest

from harness import Server, hold_requests, wait_for

HEADER = 'X-Stampede-Criticality'


def inflight(server, mode):
    return server.metrics().value('stampede_limit_inflight', mode=mode)


class CriticalityTest(unittest.TestCase):
    def test_near_the_limit_the_sheddable_are_shed_and_the_critical_admitted(self):
        # A limit of 4 places in each mode; SHEDDABLE may fill half of it, SHEDDABLE_PLUS 3/4.
        for mode, extra in (('bounded', 'bounded:\n  workers: 3\n  queue_capacity: 1\n'),
                            ('coroutine', 'coroutine:\n  max_tasks: 4\n'),
                            ('thread_per_request', 'thread_per_request:\n  max_threads: 4\n')):
            with self.subTest(mode=mode), Server('mode: %s\n%s' % (mode, extra)) as s:
                held = hold_requests(s, 2, '/work/io?ms=3000')
                try:
                    self.assertTrue(wait_for(lambda: inflight(s, mode) == 2))
                    r = s.get('/work/io?ms=1', headers={HEADER: 'SHEDDABLE'})
                    self.assertEqual(r.status, 503)
                    self.assertEqual(r.json()['reason'], 'shed')
                    self.assertIn('retry-after', r.headers)
                    # SHEDDABLE_PLUS still has a place (2 of its 3), CRITICAL (the default) too.
                    r = s.get('/work/io?ms=1', headers={HEADER: 'sheddable_plus'})
                    self.assertEqual(r.status, 200, r.body)
                    r = s.get('/work/io?ms=1')
                    self.assertEqual(r.status, 200, r.body)
                    m = s.metrics()
                    self.assertEqual(m.value('stampede_rejected_total', mode=mode,
                                             reason='shed'), 1)
                    self.assertEqual(m.value('stampede_admissions_total', mode=mode,
                                             criticality='SHEDDABLE', result='refused'), 1)
                    self.assertEqual(m.value('stampede_admissions_total', mode=mode,
                                             criticality='CRITICAL', result='admitted'), 3)
                    self.assertEqual(m.value('stampede_admissions_total', mode=mode,
                                             criticality='SHEDDABLE_PLUS',
                                             result='admitted'), 1)
                finally:
                    for h in held:
                        h.close()

    def test_critical_plus_takes_the_last_place_that_critical_may_not(self):
        config = ('mode: coroutine\ncoroutine:\n  max_tasks: 4\n'
                  'limiter:\n  critical_share: 75\n')
        with Server(config) as s:
            held = hold_requests(s, 3, '/work/io?ms=3000')
            try:
                self.assertTrue(wait_for(lambda: inflight(s, 'coroutine') == 3))
                r = s.get('/work/io?ms=1')
                self.assertEqual((r.status, r.json()['reason']), (503, 'shed'))
                self.assertEqual(s.get('/work/io?ms=1',
                                       headers={HEADER: 'CRITICAL_PLUS'}).status, 200)
            finally:
                for h in held:
                    h.close()

    def test_a_mode_with_no_limit_sheds_nothing(self):
        with Server('mode: coroutine\ncoroutine:\n  max_tasks: 0\n') as s:
            held = hold_requests(s, 5, '/work/io?ms=3000')
            try:
                self.assertTrue(wait_for(lambda: s.metrics().value(
                    'stampede_tasks', mode='coroutine', state='running') == 5))
                self.assertEqual(s.get('/work/io?ms=1', headers={HEADER: 'SHEDDABLE'}).status,
                                 200)
            finally:
                for h in held:
                    h.close()

    def test_the_shares_change_live_and_a_bad_reload_keeps_them(self):
        base = 'mode: coroutine\ncoroutine:\n  max_tasks: 4\n'
        with Server(base) as s:
            held = hold_requests(s, 1, '/work/io?ms=3000')
            try:
                self.assertTrue(wait_for(lambda: inflight(s, 'coroutine') == 1))
                self.assertEqual(s.get('/work/io?ms=1', headers={HEADER: 'SHEDDABLE'}).status,
                                 200)
                s.write_config(base + 'limiter:\n  sheddable_share: 0\n')
                self.assertTrue(wait_for(
                    lambda: s.config()['limiter']['sheddable_share'] == 0))
                self.assertEqual(s.get('/work/io?ms=1', headers={HEADER: 'SHEDDABLE'}).status,
                                 503)
                s.write_config(base + 'limiter:\n  sheddable_share: 90\n')
                self.assertTrue(wait_for(lambda: s.metrics().value(
                    'stampede_config_reloads_total', result='error') >= 1))
                line = next(l for l in reversed(s.log) if 'limiter.sheddable_share' in l)
                self.assertIn('sheddable_plus_share', line)
                self.assertRegex(line, r'\.yaml:\d+')
                self.assertEqual(s.config()['limiter']['sheddable_share'], 0)
            finally:
                for h in held:
                    h.close()

    def test_a_bad_criticality_is_400_and_runs_nothing(self):
        with Server('mode: bounded\n') as s:
            r = s.get('/work/io?ms=1', headers={HEADER: 'URGENT'})
            self.assertEqual(r.status, 400)
            self.assertEqual(r.json()['reason'], 'bad_parameter')
            self.assertIn('CRITICAL_PLUS', r.json()['error'])
            self.assertEqual(s.metrics().value('stampede_tasks_started_total', mode='bounded'),
                             0)


if __name__ == '__main__':
    unittest.main()
