"""thread-per-request when the OS refuses threads: under a lowered RLIMIT_NPROC, requests
beyond what the OS allows get 503 spawn_failed, the server stays healthy, and it recovers
when the load drops."""

import os
import pwd
import resource
import unittest

from harness import Server, in_threads, wait_for

NOBODY = 65534
THREADS_ALLOWED = 10  # for the server's user, beyond what that user already runs


def threads_of(uid):
    """Threads (tasks) that `uid` runs now, system-wide: what RLIMIT_NPROC counts."""
    n = 0
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            st = os.stat('/proc/' + pid)
            if st.st_uid == uid:
                n += len(os.listdir('/proc/%s/task' % pid))
        except OSError:
            pass
    return n


def lowered_nproc():
    """Returns (preexec_fn, user) that start the server with a small RLIMIT_NPROC. Root is
    not held to RLIMIT_NPROC, so as root the server runs as nobody."""
    uid = NOBODY if os.geteuid() == 0 else os.geteuid()
    limit = threads_of(uid) + THREADS_ALLOWED

    def preexec():
        if os.geteuid() == 0:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    return preexec, pwd.getpwuid(uid).pw_name


class SpawnFailureTest(unittest.TestCase):
    def test_refused_threads_answer_503_and_the_server_recovers(self):
        preexec, user = lowered_nproc()
        config = 'mode: thread_per_request\nthread_per_request:\n  max_threads: 1000\n'
        with Server(config, preexec_fn=preexec) as server:
            results = in_threads(40, lambda i: server.get('/work/io?ms=800'))
            codes = [r.status for r in results]
            self.assertIn(200, codes, 'some requests got a thread')
            refused = [r for r in results if r.status == 503]
            self.assertTrue(refused, 'with ~%d threads allowed to %s, 40 requests cannot all '
                                     'get one: %s' % (THREADS_ALLOWED, user, codes))
            for r in refused:
                self.assertEqual(r.json()['reason'], 'spawn_failed')
            print('\n%d of 40 requests refused (spawn_failed), %d served, as %s with %d threads '
                  'allowed' % (len(refused), codes.count(200), user, THREADS_ALLOWED))
            m = server.metrics()
            self.assertEqual(m.value('stampede_rejected_total', mode='thread_per_request',
                                     reason='spawn_failed'), len(refused))
            self.assertIsNone(server.proc.poll(), 'still running')
            # Load gone: threads are given back and requests are served again.
            self.assertTrue(wait_for(lambda: server.metrics().value(
                'stampede_tasks', state='running') == 0, timeout=10))
            again = in_threads(3, lambda i: server.get('/work/io?ms=50'))
            self.assertEqual([r.status for r in again], [200, 200, 200])


if __name__ == '__main__':
    unittest.main()
