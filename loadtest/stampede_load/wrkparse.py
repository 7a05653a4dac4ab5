"""Parse what wrk prints when run with loadtest/wrk/stampede.lua, and merge the results of
several wrk runs (their success-latency histograms add up exactly)."""

import json
import math
import re

MARK = 'STAMPEDE_WRK '


class WrkResult:
    """One wrk run: counts per status, errors, and a histogram of 2xx latencies (µs)."""

    def __init__(self, duration_us=0, requests=0, codes=None, errors=None, ok_count=0,
                 ok_sum_us=0.0, ok_max_us=0.0, growth=1.02, buckets=None, all_latency=None,
                 sent=None, timeline=None, retries=None, throttled=None):
        self.duration_us = duration_us
        self.requests = requests  # answered
        self.sent = sent          # sent (or scheduled), when the generator says
        self.codes = dict(codes or {})
        self.errors = dict(errors or {})
        self.ok_count = ok_count
        self.ok_sum_us = ok_sum_us
        self.ok_max_us = ok_max_us
        self.growth = growth
        self.buckets = dict(buckets or {})
        self.all_latency = dict(all_latency or {})
        # stampede-openloop only: per second [ok, 503, other, timeout, lost, error, retry,
        # throttled], an attempt counted where it ended
        self.timeline = [list(r) for r in (timeline or [])]
        self.retries = retries      # stampede-openloop --retry: retries sent
        self.throttled = throttled  # and attempts its client-side throttle refused
        self.started_at = None  # seconds on the sampler's clock, set by the driver

    @property
    def unanswered(self):
        """Requests sent that got no answer before the run ended (None if unknown)."""
        return None if self.sent is None else max(0, self.sent - self.requests)

    @property
    def timeouts(self):
        return self.errors.get('timeout', 0)

    @property
    def lost(self):
        """Requests whose connection was closed or reset with no answer (the server died)."""
        return self.errors.get('lost', 0)

    @property
    def socket_errors(self):
        return sum(self.errors.get(k, 0) for k in ('connect', 'read', 'write'))

    def count(self, status):
        return self.codes.get(str(status), 0)

    def count_class(self, first_digit):
        return sum(v for k, v in self.codes.items() if k.startswith(str(first_digit)))

    def ok_percentile(self, q):
        """Latency (µs) of successes at quantile q in [0, 1]; None without successes. Exact to
        the bucket width (2%): the bucket's geometric middle is returned."""
        total = sum(self.buckets.values())
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for b in sorted(self.buckets):
            seen += self.buckets[b]
            if seen >= rank:
                return min(self.growth ** (b + 0.5), self.ok_max_us)
        return self.ok_max_us

    def to_dict(self):
        return {
            'duration_us': self.duration_us, 'requests': self.requests, 'sent': self.sent,
            'codes': self.codes,
            'errors': self.errors, 'ok': {'count': self.ok_count, 'sum_us': self.ok_sum_us,
                                          'max_us': self.ok_max_us, 'growth': self.growth,
                                          'buckets': {str(k): v for k, v in self.buckets.items()}},
            'all': self.all_latency, 'timeline': self.timeline, 'started_at': self.started_at,
        }


def parse(output):
    """Finds the STAMPEDE_WRK line in wrk's output; raises ValueError if missing or bad."""
    for line in output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
            ok = data['ok']
            return WrkResult(
                duration_us=data['duration_us'], requests=data['requests'], codes=data['codes'],
                errors=data['errors'], ok_count=ok['count'], ok_sum_us=ok['sum_us'],
                ok_max_us=ok['max_us'], growth=ok.get('growth', 1.02),
                buckets={int(k): v for k, v in ok['buckets'].items()},
                all_latency=data.get('all', {}),
                sent=data.get('sent', data.get('scheduled')),
                timeline=data.get('timeline'), retries=data.get('retries'),
                throttled=data.get('throttled'))
    raise ValueError('no %r line in wrk output:\n%s' % (MARK.strip(), output[-2000:]))


def requests_per_second(output):
    """wrk's own 'Requests/sec:' figure, or None."""
    m = re.search(r'^Requests/sec:\s+([\d.]+)', output, re.M)
    return float(m.group(1)) if m else None


def merge(results):
    """Sums several runs that overlapped in time (durations: the longest)."""
    out = WrkResult()
    for r in results:
        out.duration_us = max(out.duration_us, r.duration_us)
        out.requests += r.requests
        if r.sent is not None:
            out.sent = (out.sent or 0) + r.sent
        for k, v in r.codes.items():
            out.codes[k] = out.codes.get(k, 0) + v
        for k, v in r.errors.items():
            out.errors[k] = out.errors.get(k, 0) + v
        for k, v in r.buckets.items():
            out.buckets[k] = out.buckets.get(k, 0) + v
        out.ok_count += r.ok_count
        out.ok_sum_us += r.ok_sum_us
        out.ok_max_us = max(out.ok_max_us, r.ok_max_us)
        if r.growth != out.growth and r.buckets:
            raise ValueError('cannot merge histograms of different bucket widths')
    return out


def fmt_ms(us):
    if us is None or (isinstance(us, float) and math.isnan(us)):
        return '-'
    ms = us / 1000.0
    if ms >= 1000:
        return '%.2fs' % (ms / 1000)
    if ms >= 100:
        return '%.0fms' % ms
    if ms >= 10:
        return '%.1fms' % ms
    return '%.2fms' % ms
