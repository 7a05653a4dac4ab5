"""The load-test lab: starts stampede, samples its /metrics, runs wrk and raw clients.

Everything here is bounded: connections (capped), durations (each process gets a hard
timeout), and targets (127.0.0.1 only). Processes started here are ended on exit, also when
interrupted (see Lab.close)."""

import os
import time

from .cgroup import MemoryCgroup
from .common import (LOOPBACK, LUA, MAX_CONNECTIONS, ROOT, Progress, ephemeral_port,
                        free_port, parse_size, raise_fd_limit, wait_until,
                        write_atomically)
from .generators import OpenLoop, Wrk, impatient_clients
from .model import MODEL_PATH, Model
from .sampler import SERIES, Sampler
from .supervisor import Server, Supervisor

# What the scenarios, the driver and the bench use as lab.X.
__all__ = ['LOOPBACK', 'LUA', 'MAX_CONNECTIONS', 'MODEL_PATH', 'ROOT', 'SERIES', 'MemoryCgroup',
           'Model', 'OpenLoop', 'ephemeral_port',
           'Progress', 'Run', 'Sampler', 'Server', 'Supervisor', 'Wrk', 'free_port',
           'impatient_clients', 'parse_size', 'raise_fd_limit', 'wait_until',
           'write_atomically']


class Run:
    """One mode's run: a fresh server (inside a memory cgroup when `memory_limit` is set, and
    restarted by a supervisor if it dies) with its sampler going, and the load generators
    started through `wrk()` / `open_loop()` / `clients()`. On exit, however it is left (Ctrl-C
    included), the generators are killed, the sampler takes a last sample, the server is
    stopped and the cgroup removed."""

    def __init__(self, binary, config_text, workdir, name, memory_limit=None, admin_port=0,
                 restart_backoff=None):
        self.cgroup = None
        self.memory_note = 'no memory limit'  # what the report says of the limit
        if memory_limit:
            self.cgroup = MemoryCgroup(memory_limit, 'stampede-%d-%s' % (os.getpid(), name))
            self.memory_note = self.cgroup.describe()
            if not self.cgroup.active:
                self.cgroup = None
        try:
            self.server = Server(binary, config_text, workdir, name, self.cgroup, admin_port)
        except BaseException:
            if self.cgroup:
                self.cgroup.close()
            raise
        self.sampler = Sampler(self.server)
        self.supervisor = Supervisor(self.server, self.sampler.t0, restart_backoff)
        self.procs = []

    def __enter__(self):
        self.sampler.start()
        self.supervisor.start()
        return self

    def _started(self, g):
        g.started_at = time.monotonic() - self.sampler.t0
        self.procs.append(g)
        return g

    def mark(self, title):
        """A marker on the live page's charts (and a Grafana annotation): what starts now."""
        self.server.annotate('event', title)

    def wrk(self, path, connections, seconds, **kw):
        return self._started(Wrk(self.server.url, path, connections, seconds, **kw))

    def open_loop(self, binary, path, rate, seconds, connections, timeout_s=2, extra=()):
        return self._started(OpenLoop(binary, self.server.url, path, seconds, rate=rate,
                                      connections=connections, timeout_s=timeout_s,
                                      extra=extra))

    def clients(self, binary, path, clients, seconds, timeout_s=2, polite=True):
        return self._started(OpenLoop(binary, self.server.url, path, seconds, clients=clients,
                                      timeout_s=timeout_s, polite=polite))

    def __exit__(self, *exc):
        for w in self.procs:
            w.kill()
        self.supervisor.stop()
        self.sampler.stop()
        self.server.stop()
        if self.cgroup:
            self.cgroup.close()
