"""Parse the Prometheus text exposition format (what stampede's /metrics serves).

Standard library only. `parse(text)` returns a list of samples (name, labels dict, value);
`Metrics` wraps them for lookups by name and label subset.
"""

import math
import re

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def _unescape(value):
    return value.replace('\\n', '\n').replace('\\"', '"').replace('\\\\', '\\')


def _parse_value(text):
    if text in ('+Inf', 'Inf'):
        return math.inf
    if text == '-Inf':
        return -math.inf
    if text == 'NaN':
        return math.nan
    return float(text)


def parse_labels(text):
    """'a="1",b="x"' -> {'a': '1', 'b': 'x'}; raises ValueError on malformed input."""
    labels = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise ValueError('malformed labels: %r' % text)
        labels[m.group(1)] = _unescape(m.group(2))
        pos = m.end()
    return labels


def parse(text):
    """Returns [(name, labels, value)] for every sample line; comments are skipped."""
    samples = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError('line %d is not a sample: %r' % (lineno, line))
        labels = parse_labels(m.group(3)) if m.group(3) else {}
        samples.append((m.group(1), labels, _parse_value(m.group(4))))
    return samples


class Metrics:
    """Samples of one scrape, looked up by name and a subset of labels."""

    def __init__(self, text):
        self.samples = parse(text)

    def matching(self, name, **labels):
        return [(l, v) for n, l, v in self.samples
                if n == name and all(l.get(k) == str(x) for k, x in labels.items())]

    def value(self, name, **labels):
        """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
        return sum(v for _, v in self.matching(name, **labels))

    def has(self, name):
        return any(n == name for n, _, _ in self.samples)

    def histogram_quantile(self, q, name, **labels):
        """Quantile from cumulative buckets of a histogram (summed over matching series),
        interpolated linearly inside the bucket as Prometheus does. None if empty."""
        buckets = {}
        for l, v in self.matching(name + '_bucket', **labels):
            le = _parse_value(l['le'])
            buckets[le] = buckets.get(le, 0) + v
        if not buckets:
            return None
        bounds = sorted(buckets)
        total = buckets[bounds[-1]]
        if total == 0:
            return None
        rank = q * total
        prev_bound, prev_count = 0.0, 0.0
        for b in bounds:
            if buckets[b] >= rank:
                if math.isinf(b):
                    return prev_bound
                span = buckets[b] - prev_count
                frac = (rank - prev_count) / span if span else 0
                return prev_bound + (b - prev_bound) * frac
            prev_bound, prev_count = b, buckets[b]
        return prev_bound
