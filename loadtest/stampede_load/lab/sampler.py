"""The sampler: /metrics five times a second into series the report plots."""

import threading
import time


SERIES = [
    ('os_threads', lambda m: m.value('stampede_os_threads')),
    ('tasks_running', lambda m: m.value('stampede_tasks', state='running')),
    ('tasks_queued', lambda m: m.value('stampede_tasks', state='queued')),
    ('queue_depth', lambda m: m.value('stampede_queue_depth')),
    # Only the active mode's policy exists, so the sum over modes is its limit (0: none).
    ('limit', lambda m: m.value('stampede_limit')),
    ('limit_inflight', lambda m: m.value('stampede_limit_inflight')),
    ('rss_bytes', lambda m: m.value('process_resident_memory_bytes')),
    ('cpu_seconds', lambda m: m.value('process_cpu_seconds_total')),
    ('connections', lambda m: m.value('stampede_connections_active')),
    ('requests', lambda m: m.value('stampede_http_requests_total')),
    ('ok', lambda m: sum(v for l, v in m.matching('stampede_http_requests_total')
                         if l['code'].startswith('2'))),
    ('rejected', lambda m: m.value('stampede_rejected_total')),
    ('cancelled', lambda m: m.value('stampede_cancelled_total')),
    ('disconnects', lambda m: m.value('stampede_client_disconnects_total')),
    ('wasted_seconds', lambda m: m.value('stampede_wasted_work_seconds_total')),
    ('ds_capacity', lambda m: m.value('stampede_downstream_capacity')),
    ('ds_in_use', lambda m: m.value('stampede_downstream_in_use')),
    ('ds_waiting', lambda m: m.value('stampede_downstream_waiting')),
    ('request_memory', lambda m: m.value('stampede_request_memory_bytes')),
    # A replica's calls to a real downstream (downstream.url), retries included.
    ('ds_calls', lambda m: m.value('stampede_downstream_calls_total')),
    ('ds_retries', lambda m: m.value('stampede_downstream_retries_total')),
    ('deadline_skips', lambda m: m.value('stampede_deadline_exceeded_total')),
    ('lab_leaked', lambda m: m.value('stampede_lab_leaked')),
    ('lab_waits', lambda m: m.value('stampede_lab_waits')),
    # Which process answered: a restart (after an OOM kill) changes it, and no rate or
    # quantile is taken across one.
    ('started', lambda m: m.value('process_start_time_seconds')),
]


class Sampler(threading.Thread):
    """Scrapes /metrics several times a second into rows (t, series..., histogram)."""

    def __init__(self, server, interval=0.2):
        super().__init__(daemon=True)
        self.server = server
        self.interval = interval
        self.rows = []
        self.buckets = []  # (t, {le: count}) of the request-duration histogram
        self.stopping = threading.Event()
        self.t0 = time.monotonic()
        self.failures = 0

    def sample(self):
        try:
            m = self.server.metrics()
        except OSError:
            self.failures += 1
            return None
        t = time.monotonic() - self.t0
        row = {'t': round(t, 3)}
        for name, fn in SERIES:
            row[name] = fn(m)
        hist = {}
        for l, v in m.matching('stampede_http_success_duration_seconds_bucket'):
            # The workload's answers only: the supervisor's /healthz probes after a restart
            # (sub-millisecond) would otherwise pass for fast answers of a dying server.
            if l.get('handler') == 'healthz':
                continue
            hist[l['le']] = hist.get(l['le'], 0) + v
        self.rows.append(row)
        self.buckets.append((t, hist))
        return row

    def run(self):
        while not self.stopping.is_set():
            self.sample()
            self.stopping.wait(self.interval)

    def stop(self):
        self.stopping.set()
        self.join(10)
        self.sample()

    def latest(self):
        return self.rows[-1] if self.rows else {}

    def peak(self, name):
        return max((r[name] for r in self.rows), default=0)
