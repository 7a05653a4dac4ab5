"""Turns scenario results into the terminal table, CSV series, gnuplot PNGs and a Markdown
summary in the report folder."""

import csv
import json
import math
import os
import platform
import subprocess

import wrkparse

OPEN_LOOP_NOTE = (
    'Open loop (--open-loop): requests were sent at fixed rates by stampede-openloop and each '
    'latency is measured from the request\'s intended send time, so a stall is counted in full '
    '(no coordinated omission). Requests still unanswered 2 s after their intended time are '
    'timeouts.')

WRK_CAVEAT = (
    'Latency figures come from wrk, a closed-loop generator: each connection sends its next '
    'request only after the previous answer, so while the server stalls, fewer requests are '
    'sent and the stall is under-represented (coordinated omission). Under overload the true '
    'latency a user would see is worse than these numbers; requests that got no answer within '
    "wrk's --timeout are counted as timeouts and are missing from the latency columns.")


def _quantile_from_buckets(q, delta):
    """delta: {le(str): cumulative count}; linear interpolation inside the bucket."""
    items = sorted(((math.inf if k == '+Inf' else float(k)), v) for k, v in delta.items())
    if not items or items[-1][1] <= 0:
        return None
    rank = q * items[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in items:
        if c >= rank:
            if math.isinf(le):
                return prev_le
            span = c - prev_c
            return prev_le + (le - prev_le) * ((rank - prev_c) / span if span else 0)
        prev_le, prev_c = le, c
    return prev_le


def derive(rows, buckets, window=1.0):
    """Adds per-second rates and the server-side p99 over a sliding window to each row."""
    out = []
    j = 0
    for i, row in enumerate(rows):
        t = row['t']
        while j < i and rows[j]['t'] < t - window:
            j += 1
        r = dict(row)
        dt = t - rows[j]['t'] if j < i else 0
        for name in ('ok', 'rejected', 'cancelled', 'requests'):
            r[name + '_per_s'] = (row[name] - rows[j][name]) / dt if dt > 0 else None
        r['cpu_util'] = (row['cpu_seconds'] - rows[j]['cpu_seconds']) / dt if dt > 0 else None
        p99 = None
        if dt > 0:
            now_b, then_b = buckets[i][1], buckets[j][1]
            delta = {k: now_b.get(k, 0) - then_b.get(k, 0) for k in now_b}
            p99 = _quantile_from_buckets(0.99, delta)
        r['server_p99_ms'] = p99 * 1000 if p99 is not None else None
        r['rss_mib'] = row['rss_bytes'] / 2**20
        out.append(r)
    return out


def write_csv(path, rows):
    if not rows:
        return
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        for r in rows:
            w.writerow({k: ('?' if v is None else (round(v, 6) if isinstance(v, float) else v))
                        for k, v in r.items()})


PLOTS = [
    # name, column, y label, log scale, title
    ('threads', 'os_threads', 'OS threads', True, 'OS threads of the server'),
    ('tasks', 'tasks_running', 'running tasks', True,
     "Request work running (stampede_tasks, state running)"),
    ('rss', 'rss_mib', 'RSS (MiB)', False, 'Resident memory'),
    ('latency', 'server_p99_ms', 'p99 (ms)', True,
     'Server-side p99 of 2xx answers over 1 s windows (excludes time queued in the kernel)'),
    ('rejections', 'rejected_per_s', '503 per second', False, 'Rejections (503) per second'),
    ('goodput', 'ok_per_s', '2xx per second', False, 'Successful responses per second'),
]

COLORS = {'blocking': '#1f77b4', 'thread_per_request': '#d62728', 'bounded': '#2ca02c'}


def plot(folder, prefix, series_files, marks, subtitle):
    """Renders one PNG per entry of PLOTS with a line per mode; `marks` = (start, end) of
    the spike, shaded. Returns the PNG file names. Needs gnuplot (Debian: gnuplot-nox)."""
    made = []
    for name, column, ylabel, log, title in PLOTS:
        png = '%s-%s.png' % (prefix, name)
        lines = [
            "set terminal pngcairo size 1000,420 font 'sans,10'",
            "set output '%s'" % png,
            'set title "%s\\n%s"' % (title.replace('"', ''), subtitle.replace('"', '')),
            'set termoption noenhanced',
            "set xlabel 'seconds since the server started'",
            "set ylabel '%s'" % ylabel,
            "set datafile separator ','",
            "set datafile missing '?'",
            'set key outside right top',
            'set grid',
            'set yrange [0:*]' if not log else 'set logscale y',
        ]
        if log:
            lines.append('set yrange [0.5:*]' if column != 'server_p99_ms' else 'set yrange [*:*]')
        if marks:
            start, end = marks
            lines.append("set object 1 rect from %.2f, graph 0 to %.2f, graph 1 behind "
                         "fc rgb '#ffe4e1' fs solid 0.6 noborder" % (start, end))
            lines.append("set label 1 'spike' at %.2f, graph 0.95" % (start + 0.1))
        plots = []
        for mode, f in series_files:
            plots.append("'%s' using 't':'%s' with lines lw 2 lc rgb '%s' title '%s'"
                         % (os.path.basename(f), column, COLORS.get(mode, 'black'), mode))
        lines.append('plot ' + ', '.join(plots))
        script = os.path.join(folder, '%s-%s.gp' % (prefix, name))
        with open(script, 'w') as fh:
            fh.write('\n'.join(lines) + '\n')
        subprocess.run(['gnuplot', os.path.basename(script)], cwd=folder, check=True,
                       capture_output=True, timeout=60)
        made.append(png)
    return made


def table(rows, columns):
    """Fixed-width text table; columns = [(header, key, formatter)]."""
    cells = [[h for h, _, _ in columns]]
    for r in rows:
        cells.append([fmt(r.get(k)) for _, k, fmt in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = []
    for n, c in enumerate(cells):
        lines.append('  '.join(s.rjust(w) if i else s.ljust(w)
                               for i, (s, w) in enumerate(zip(c, widths))))
        if n == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def markdown_table(rows, columns):
    out = ['| ' + ' | '.join(h for h, _, _ in columns) + ' |',
           '|' + '|'.join('---' for _ in columns) + '|']
    for r in rows:
        out.append('| ' + ' | '.join(fmt(r.get(k)) for _, k, fmt in columns) + ' |')
    return '\n'.join(out)


def num(v, digits=0):
    if v is None:
        return '-'
    if digits == 0:
        return '{:,}'.format(int(round(v)))
    return ('{:,.%df}' % digits).format(v)


def n0(v):
    return num(v)


def n1(v):
    return num(v, 1)


def n2(v):
    return num(v, 2)


def ms(v):
    return wrkparse.fmt_ms(v)


def mib(v):
    return '-' if v is None else '%.0f MiB' % (v / 2**20)


def text(v):
    return '-' if v is None else str(v)


def machine():
    return '%s, %d cores, Linux %s' % (platform.machine(), os.cpu_count() or 0,
                                       platform.release())


def write_json(path, data):
    with open(path, 'w') as f:
        json.dump(data, f, indent=2, default=lambda o: o.to_dict() if hasattr(o, 'to_dict')
                  else str(o))
