"""Turns scenario results into the terminal table, CSV series, gnuplot PNGs and a Markdown
summary in the report folder."""

import base64
import csv
import html
import json
import math
import os
import platform
import re
import subprocess

from . import wrkparse

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


CLIENTS_NOTE = (
    'Load came from clients with deadlines (stampede-openloop --closed): each client sends its '
    'next request when the last one is answered or abandoned, and abandons a request after the '
    'deadline by closing its connection, as a user or an RPC deadline does. Goodput is 2xx '
    'answered within the deadline. A client turned away with a 503 waits its Retry-After (with '
    'jitter) before asking again, as a client with a retry policy does (--retry-at-once shows '
    'the retry storm instead). Being a closed loop, a stalled server is offered less load '
    '(coordinated omission): latency under overload is understated (--open-loop shows fixed '
    'arrival rates instead).')


FLEET_NOTE = (
    'Load came from stampede-openloop at fixed rates through HAProxy, as 20 client tasks with '
    'a 1 s deadline per attempt and the variant\'s retry policy. Goodput is 2xx answered within '
    'the deadline, per second, as the clients saw it. Amplification is the calls the replicas '
    'made to the downstream (retries included) per request the clients offered. "recovered '
    'after" counts from the end of the trigger to the first of 3 seconds in a row at 90 % of '
    'the goodput before it. Plots and per-second series (CSV) are in the report folder.')


LABS_NOTE = (
    'Each lab ran on fresh servers (the leak lab resets its server between its two variants). Lost updates, oversold seats, leaked '
    'helpers, lock cycles and starvation are read from the server itself (GET /labs on the '
    'admin port, stampede_lab_* metrics); goodput is 2xx per second as its clients saw it. The '
    'counter and reserve loads come from wrk (16 and 32 connections), the leak load from '
    'stampede-openloop at a fixed rate, the transfer and nested loads from 8 clients with a 2 s '
    'deadline. "detected after" is how long a lock cycle or a stall had lasted when its '
    'detector reported it (labs.deadlock_detect_ms 500, checked every 100 ms).')


CRITICALITY_NOTE = (
    'stampede-openloop clients at fixed rates (open loop) with a deadline, each sending its '
    'criticality in X-Stampede-Criticality; goodput is 2xx within the deadline per second. '
    '"% of alone": the critical clients\' goodput against theirs with no flood. "refused at '
    'admission": stampede_admissions_total{result="refused"} over the phase, the server\'s '
    'count (503 shed, or the mode\'s own limit).')

ADAPTIVE_NOTE = (
    'stampede-openloop clients at a fixed rate (open loop: latency from each request\'s '
    'intended send time) with a deadline; goodput is 2xx within the deadline per second, as a '
    'share of what the phase\'s bottleneck can serve (downstream slots / call time, or cores / '
    'CPU time). "p99 x unloaded" compares the admitted requests\' p99 with the same request\'s '
    'p99 at a few requests a second. "Little\'s law" is the concurrency the bottleneck needs: '
    'capacity x service time. "settled after s": from the step until the limit stays within '
    '20 % (at least 2) of where it ends the phase. A phase just after a cut can show a little '
    'over 100 %: calls the previous phase started on its larger capacity finish in this one. '
    'See docs/limits.md.')


def note_for(kind):
    """The caveat that goes with the load generator used."""
    return {'clients': CLIENTS_NOTE, 'open-loop': OPEN_LOOP_NOTE,
            'labs': LABS_NOTE, 'fleet': FLEET_NOTE,
            'adaptive': ADAPTIVE_NOTE, 'criticality': CRITICALITY_NOTE}.get(kind, WRK_CAVEAT)


def spike_context(r):
    """One line on how the spike was set up: bottleneck, deadline, memory limit."""
    if r.get('endpoint') == 'io':
        bottleneck = 'downstream of %d slots, %s/s at most' % (
            round(r['capacity_per_s'] * int(r['path'].split('ms=')[1]) / 1000),
            _count(r['capacity_per_s']))
    else:
        bottleneck = '%d cores, about %s/s' % (os.cpu_count() or 2, _count(r['capacity_per_s']))
    deadline = ('clients give up after %g s' % r['deadline_s']) if r.get('load') != 'wrk' \
        else "wrk's clients never give up"
    return 'bottleneck: %s; %s; working set %d KiB per request; %s' % (
        bottleneck, deadline, r.get('request_kb') or 0, r.get('memory_limit_note'))


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
        # Nothing is taken across a restart: the window starts with the process that answers
        # now (a delta between two processes' counters can look plausible and be garbage).
        while j < i and rows[j].get('started') != row.get('started'):
            j += 1
        dt = t - rows[j]['t'] if j < i else 0
        # A counter that fell means the server was restarted: no rate across the restart.
        for name in ('ok', 'rejected', 'cancelled', 'requests', 'wasted_seconds'):
            if name not in row:
                continue
            rise = row[name] - rows[j][name]
            r[name + '_per_s'] = rise / dt if dt > 0 and rise >= 0 else None
        rise = row['cpu_seconds'] - rows[j]['cpu_seconds']
        r['cpu_util'] = rise / dt if dt > 0 and rise >= 0 else None
        p99 = None
        if dt > 0:
            now_b, then_b = buckets[i][1], buckets[j][1]
            delta = {k: now_b.get(k, 0) - then_b.get(k, 0) for k in now_b}
            if all(v >= 0 for v in delta.values()):
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
    # name, source, column, y label, log scale, title
    ('threads', 'series', 'os_threads', 'OS threads', True, 'OS threads of the server'),
    ('tasks', 'series', 'tasks_running', 'running tasks', True,
     "Request work running (stampede_tasks, state running)"),
    ('rss', 'series', 'rss_mib', 'RSS (MiB)', False,
     'RSS against the memory limit (sampled 5 times a second: a kill comes between samples)'),
    ('latency', 'series', 'server_p99_ms', 'p99 (ms)', True,
     'Server-side p99 of 2xx answers over 1 s windows (excludes time queued in the kernel)'),
    ('rejections', 'series', 'rejected_per_s', '503 per second', False,
     'Rejections (503) per second'),
    ('goodput', 'clients', 'goodput', '2xx within the deadline per second', False,
     "Goodput (client side: 2xx answered within the client's deadline) against capacity"),
    ('wasted', 'series', 'wasted_seconds_per_s', 'handler s per s', False,
     'Work done for clients that had already left (wasted handler seconds per second)'),
]

COLORS = {'blocking': '#1f77b4', 'thread_per_request': '#d62728', 'bounded': '#2ca02c',
          'coroutine': '#9467bd', 'coroutine (max_tasks 64)': '#ff7f0e'}
SPARE_COLORS = ['#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f']


def color(mode):
    """A mode's line colour: fixed for the usual rows, a spare one for any other."""
    if mode not in COLORS:
        COLORS[mode] = SPARE_COLORS[len(COLORS) % len(SPARE_COLORS)]
    return COLORS[mode]


TIMELINE = ['ok', '503', 'other', 'timeout', 'lost', 'error']


def window_counts(results, start, end):
    """What the generators' clients saw end within [start, end) on the sampler's clock, from
    their per-second timelines: {'ok': ..., '503': ..., ...}; None if any kept no timeline."""
    if not results or any(not r.timeline or r.started_at is None for r in results):
        return None
    out = dict.fromkeys(TIMELINE, 0)
    for r in results:
        for i, counts in enumerate(r.timeline):
            if start <= r.started_at + i + 0.5 < end:
                for k, v in zip(TIMELINE, counts):
                    out[k] += v
    return out


def write_client_series(path, results):
    """Merges the generators' per-second timelines (each placed at its start on the
    sampler's clock) into one CSV: t, goodput, rejected, timeouts, lost. False if no
    generator kept a timeline (wrk)."""
    bins = {}
    for r in results:
        if not r.timeline or r.started_at is None:
            continue
        for i, counts in enumerate(r.timeline):
            t = int(r.started_at + i + 0.5)
            acc = bins.setdefault(t, [0] * 6)
            for k, v in enumerate(counts[:6]):
                acc[k] += v
    if not bins:
        return False
    with open(path, 'w') as f:
        f.write('t,goodput,rejected,other,timeouts,lost,errors\n')
        for t in range(min(bins), max(bins) + 1):
            f.write('%d,%s\n' % (t, ','.join(str(v) for v in bins.get(t, [0] * 6))))
    return True


def plot(folder, prefix, series_files, marks, subtitle, client_files=(), capacity=None,
         memory_limit=None, deaths=None):
    """Renders one PNG per entry of PLOTS with a line per mode; `marks` = (start, end) of
    the spike, shaded; `capacity` = (per second, label) is drawn on the goodput plot and
    `memory_limit` (bytes) on the RSS plot; the server-side plots get a dotted line in the
    mode's colour at each of `deaths` ({mode: [t, ...]}: the server died). Returns the PNG file names. Needs gnuplot
    (Debian: gnuplot-nox)."""
    made = []
    for name, source, column, ylabel, log, title in PLOTS:
        files = series_files if source == 'series' else client_files
        if not files:
            continue
        png = '%s-%s.png' % (prefix, name)
        lines = [
            "set terminal pngcairo size 1000,420 font 'sans,10'",
            "set output '%s'" % png,
            'set title "%s\\n%s"' % (title.replace('"', ''), subtitle.replace('"', '')),
            'set termoption noenhanced',
            "set xlabel 'seconds since the server started'",
            "set ylabel '%s'" % ylabel,
            "set datafile separator ','",
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
        for mode, f in files:
            style = 'lines lw 2' if source == 'series' else 'steps lw 2'
            # A missing value ('?': no sample, or a window the server did not live through)
            # breaks the line instead of being bridged: a line drawn across the OOM kills would
            # show a dying server's latency as steady.
            plots.append("'%s' using 't':(strcol('%s') eq '?' ? NaN : column('%s')) with %s "
                         "lc rgb '%s' title '%s'"
                         % (os.path.basename(f), column, column, style, color(mode), mode))
        if name == 'goodput' and capacity:
            plots.append("%g with lines dt 2 lw 2 lc rgb 'black' title '%s (%g/s)'"
                         % (capacity[0], capacity[1], capacity[0]))
        if source == 'series':  # every server-side series breaks where the server died
            n = 10
            for mode, times in (deaths or {}).items():
                for t in times:
                    lines.append("set arrow %d from %.2f, graph 0 to %.2f, graph 1 nohead dt 3 "
                                 "lc rgb '%s'" % (n, t, t, color(mode)))
                    n += 1
            if n > 10:
                lines.append("set label 2 'dotted: the server died (see OOM kills) and was restarted' "
                             "at graph 0.01, graph 1.04")
        if name == 'rss' and memory_limit:
            mib = memory_limit / 2**20
            lines.append('set yrange [0:%g]' % (mib * 1.15))
            plots.append("%g with lines dt 2 lw 2 lc rgb 'black' title 'memory limit (%.0f MiB)'"
                         % (mib, mib))
        lines.append('plot ' + ', '.join(plots))
        script = os.path.join(folder, '%s-%s.gp' % (prefix, name))
        with open(script, 'w') as fh:
            fh.write('\n'.join(lines) + '\n')
        subprocess.run(['gnuplot', os.path.basename(script)], cwd=folder, check=True,
                       capture_output=True, timeout=60)
        made.append(png)
    return made


def _count(n):
    return '{:,}'.format(int(round(n)))


def verdict(r):
    """What happened to one mode in the spike, in words, from its measured figures."""
    sent, ok = r.get('sent') or 0, r.get('ok') or 0
    deadline = r.get('deadline_s')
    cap = r.get('capacity_per_s')
    parts = []
    within = ' within the client\'s %g s' % deadline if r.get('load') != 'wrk' else ''
    share = ' (%.0f %%)' % (100.0 * ok / sent) if sent else ''
    line = '%s of %s requests answered%s during the spike%s' % (
        _count(ok), _count(sent), within, share)
    if cap:
        line += ': %s/s against the %s/s the %s can serve' % (
            _count(r['goodput_per_s']), _count(cap),
            'downstream' if r.get('endpoint') == 'io' else 'cores')
    parts.append(line)
    if r.get('tasks_peak') and r.get('threads_peak') and r['mode'].startswith('coroutine'):
        parts.append('%s tasks alive at the peak on %s OS threads' % (
            _count(r['tasks_peak']), _count(r['threads_peak'])))
    if r.get('rejected_503'):
        parts.append('%s turned away at once with 503' % _count(r['rejected_503']))
    if r.get('ok_p99_us') and r.get('baseline_p99_us') and ok >= 50:
        parts.append('p99 of those answered %s (%.1f× before the spike)' % (
            wrkparse.fmt_ms(r['ok_p99_us']), r['ok_p99_us'] / r['baseline_p99_us']))
    if r.get('timeouts'):
        parts.append('%s abandoned by their clients at the deadline' % _count(r['timeouts']))
    wasted = r.get('wasted_s') or 0
    if wasted >= 0.5:
        parts.append('%s s of work done for clients that had left' % _count(wasted))
    kills = r.get('oom_kills') or 0
    if kills:
        first = r.get('first_death_after_spike_s')
        when = (' (first %.1f s into the spike)' % first) if first is not None and first >= 0 \
            else ''
        lost = r.get('lost_in_flight') or 0
        line = 'killed by the OOM killer %d time%s%s; %s requests in flight lost' % (
            kills, '' if kills == 1 else 's', when, _count(lost))
        if r.get('recovery_s') is not None:
            line += '; answering again %.1f s after a kill (worst)' % r['recovery_s']
        parts.append(line)
    elif r.get('memory_limit_bytes'):
        parts.append('stayed up: RSS peak %s of the %s limit' % (
            mib(r.get('rss_peak')), mib(r['memory_limit_bytes'])))
    return '%s: %s.' % (r['mode'], '; '.join(parts))


def table(rows, columns):
    """Fixed-width text table; columns = [(header, key, formatter)]."""
    cells = [[h for h, _, _ in columns]]
    for r in rows:
        cells.append([fmt(r.get(k)) for _, k, fmt in columns])
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    # Figures to the right, words (the first column, and any of text) to the left.
    left = [i == 0 or fmt is text for i, (_, _, fmt) in enumerate(columns)]
    lines = []
    for n, c in enumerate(cells):
        lines.append('  '.join(s.ljust(w) if left[i] else s.rjust(w)
                               for i, (s, w) in enumerate(zip(c, widths))).rstrip())
        if n == 0:
            lines.append('  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def markdown_table(rows, columns):
    out = ['| ' + ' | '.join(h for h, _, _ in columns) + ' |',
           '|' + '|'.join('---' for _ in columns) + '|']
    for r in rows:
        out.append('| ' + ' | '.join(fmt(r.get(k)) for _, k, fmt in columns) + ' |')
    return '\n'.join(out)


def html_table(rows, columns):
    """The same table as markdown_table, as HTML (numbers right-aligned)."""
    head = ''.join('<th>%s</th>' % html.escape(h) for h, _, _ in columns)
    body = ''.join('<tr>%s</tr>' % ''.join(
        '<td%s>%s</td>' % (' class="n"' if isinstance(r.get(k), (int, float)) else '',
                          html.escape(str(fmt(r.get(k))))) for _, k, fmt in columns)
        for r in rows)
    return '<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (head, body)


HANDOUT_STYLE = """
body { font: 15px/1.45 "DejaVu Sans", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
.meta, .note { color: #555; } .verdicts li { margin: .4em 0; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 3px 7px; white-space: nowrap; }
th { background: #f3f3f3; } td.n { text-align: right; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; }
@media print { h2 { break-before: auto; } img { break-inside: avoid; } }
"""


def handout(path, title, blocks):
    """One self-contained HTML file: `blocks` of HTML in order, every plot (an <img> whose
    src is a file in the report folder) inlined as a data URI, so that it opens offline."""
    folder = os.path.dirname(path)

    def inline(m):
        name = html.unescape(m.group(1))
        try:
            with open(os.path.join(folder, name), 'rb') as f:
                data = base64.b64encode(f.read()).decode()
        except OSError:
            return m.group(0)
        return 'src="data:image/png;base64,%s"' % data

    page = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>%s</title>'
            '<style>%s</style></head><body>%s</body></html>\n') % (
                html.escape(title), HANDOUT_STYLE, '\n'.join(blocks))
    page = re.sub(r'src="([^":]+\.png)"', inline, page)
    with open(path, 'w') as f:
        f.write(page)


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


def gnuplot(out, name, title, xlabel, ylabel, extra, curves, log=False):
    """Writes NAME.gp in `out` (a PNG of `curves`, with `extra` gnuplot lines before the plot:
    shading, arrows, labels) and runs it; returns the PNG's file name."""
    lines = ["set terminal pngcairo size 1100,440 font 'sans,10'",
             "set output '%s.png'" % name, 'set title "%s"' % title.replace('"', ''),
             'set termoption noenhanced', "set xlabel '%s'" % xlabel,
             "set ylabel '%s'" % ylabel, "set datafile separator ','",
             'set key outside right top', 'set grid',
             'set logscale y 2' if log else 'set yrange [0:*]'] + list(extra)
    lines.append('plot ' + ', '.join(curves))
    with open(os.path.join(out, name + '.gp'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    subprocess.run(['gnuplot', name + '.gp'], cwd=out, check=True, capture_output=True,
                   timeout=60)
    return name + '.png'
