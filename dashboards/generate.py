#!/usr/bin/env python3
"""Writes dashboards/stampede.json, the main Grafana dashboard, top to bottom in the order
the story is told, and dashboards/fleet.json, the fleet's (docker-compose --profile fleet).
Edit here and re-run (python3 dashboards/generate.py); the JSON is checked in so that Grafana
provisioning needs no build step."""

import json
import os

DS = {'type': 'prometheus', 'uid': 'prometheus'}
FLEET_DS = {'type': 'prometheus', 'uid': 'prometheus-fleet'}
# Grafana refuses refresh intervals under its min_refresh_interval, 5 s by default.
REFRESH = {'refresh': '5s', 'timepicker': {'refresh_intervals': ['5s', '10s', '30s', '1m']}}
M = '{mode=~"$mode"}'
M_AND = 'mode=~"$mode"'
RATE = '$__rate_interval'

panels = []
_next_id = [1]


def quantiles(metric, qs=(0.5, 0.99)):
    """Targets for the quantiles of an unlabelled histogram over the rate interval."""
    return [('histogram_quantile(%g, sum by (le) (rate(%s_bucket[%s])))' % (q, metric, RATE),
             'p%g' % (q * 100)) for q in qs]
_y = [0]


def row(title):
    panels.append({'type': 'row', 'title': title, 'id': _next_id[0], 'collapsed': False,
                   'gridPos': {'h': 1, 'w': 24, 'x': 0, 'y': _y[0]}, 'panels': []})
    _next_id[0] += 1
    _y[0] += 1


def panel(title, description, targets, unit, x, w, h=8, kind='timeseries', extra=None,
          new_row=False, ds=DS):
    p = {
        'type': kind, 'title': title, 'description': description, 'id': _next_id[0],
        'datasource': ds,
        'gridPos': {'h': h, 'w': w, 'x': x, 'y': _y[0]},
        'fieldConfig': {'defaults': {'unit': unit, 'custom': {}}, 'overrides': []},
        'options': {'legend': {'displayMode': 'list', 'placement': 'bottom', 'showLegend': True},
                    'tooltip': {'mode': 'multi', 'sort': 'desc'}},
        'targets': [{'datasource': ds, 'refId': chr(ord('A') + i), 'expr': e, 'legendFormat': l,
                     'range': True}
                    for i, (e, l) in enumerate(targets)],
    }
    if kind == 'timeseries':
        p['fieldConfig']['defaults']['custom'] = {'lineWidth': 2, 'fillOpacity': 10,
                                                  'showPoints': 'never', 'spanNulls': True}
    if extra:
        for k, v in extra.items():
            if isinstance(v, dict) and isinstance(p.get(k), dict):
                p[k].update(v)
            else:
                p[k] = v
    panels.append(p)
    _next_id[0] += 1
    if x + w >= 24:
        _y[0] += h


def restarts(ds, by=''):
    """The annotation of a restart after an OOM kill, from the server's own count of the kills
    in its cgroup (its supervisor restarts it in the same one)."""
    return {'name': 'OOM kills', 'datasource': ds, 'enable': True, 'iconColor': 'red',
            'expr': 'increase(stampede_oom_kills_total[15s]) > 0',
            'titleFormat': 'OOM kill' + by,
            'textFormat': 'the OOM killer ended the server; its supervisor restarted it',
            'step': '5s'}


def presenter(ds):
    """What a lesson or scenario said it ran (POST /annotations): each kept annotation is a
    series whose value is the time it was posted."""
    return {'name': 'Presenter', 'datasource': ds, 'enable': True, 'iconColor': '#b35900',
            'expr': 'stampede_annotation_time_seconds', 'useValueForTime': True,
            'titleFormat': '{{kind}}: {{title}}',
            'textFormat': 'posted by loadtest/run (a lesson or a scenario) on the admin port',
            'step': '5s'}


row('Which mode, and how much work is alive')
panel('Active mode',
      'The execution mode in force (stampede_mode_info). Edit mode: in the config file and '
      'watch it change here; requests already running finish under the old mode.',
      [('stampede_mode_info == 1', '{{mode}}')], 'none', 0, 6, kind='state-timeline',
      extra={'options': {'showValue': 'never', 'mergeValues': True, 'rowHeight': 0.8,
                         'legend': {'showLegend': False, 'displayMode': 'list',
                                    'placement': 'bottom'}}})
panel('Request work alive vs OS threads',
      'The goroutine-equivalent view. Tasks = requests queued or running; OS threads = what '
      'the kernel schedules. thread_per_request: threads rise with tasks (the runaway). '
      'coroutine: tasks climb into the tens of thousands while threads stay flat — the '
      'goroutine runaway, paid in memory. bounded (and coroutine with max_tasks): tasks are '
      'capped. blocking: one.',
      [('sum by (state) (stampede_tasks%s)' % M, 'tasks {{state}}'),
       ('stampede_os_threads', 'OS threads')], 'short', 6, 18)

row('Traffic and latency')
panel('Requests per second by status',
      '2xx = served; 503 = shed (bounded: queue_full, queue_timeout; thread_per_request: '
      'thread_ceiling, spawn_failed; coroutine: task_limit; an adaptive limit: limit); 499 = '
      'the client left before its answer.',
      [('sum by (code) (rate(stampede_http_requests_total%s[%s]))' % (M, RATE), '{{code}}')],
      'reqps', 0, 12)
panel('Latency p50 / p90 / p99 (server-side)',
      'From the first byte of a request to its response written. Excludes time waiting in the '
      "kernel's accept queue, which is where blocking mode's queue lives. Success-only p99 "
      'leaves out fast 503s.',
      [('histogram_quantile(0.5, sum by (le) (rate(stampede_http_request_duration_seconds_bucket%s[%s])))' % (M, RATE), 'p50'),
       ('histogram_quantile(0.9, sum by (le) (rate(stampede_http_request_duration_seconds_bucket%s[%s])))' % (M, RATE), 'p90'),
       ('histogram_quantile(0.99, sum by (le) (rate(stampede_http_request_duration_seconds_bucket%s[%s])))' % (M, RATE), 'p99'),
       ('histogram_quantile(0.99, sum by (le) (rate(stampede_http_success_duration_seconds_bucket%s[%s])))' % (M, RATE), 'p99 of 2xx')],
      's', 12, 12)

row('The bounded pool')
panel('Queue depth vs capacity',
      'bounded mode: work waiting for a worker, against the queue capacity and the number of '
      'workers. A queue pinned at capacity means the excess is being answered 503 queue_full.',
      [('stampede_queue_depth', 'queued'), ('stampede_queue_capacity', 'capacity'),
       ('stampede_pool_workers', 'workers')], 'short', 0, 12)
panel('Queue wait p50 / p99',
      'Time from admission until a worker takes the work. Keep it short: a long queue only '
      'adds latency (see the Google SRE book, Addressing Cascading Failures).',
      quantiles('stampede_queue_wait_seconds'),
      's', 12, 12)

row('The downstream: the real bottleneck')
panel('Downstream in use vs capacity',
      'The simulated dependency behind /work/io and fan-out (a database behind a pool of '
      'downstream.capacity connections). In use pinned at capacity with a long waiting line '
      'means more concurrency upstream only lengthens the line: goodput cannot rise past '
      'capacity / call time.',
      [('stampede_downstream_in_use', 'in use'), ('stampede_downstream_waiting', 'waiting'),
       ('stampede_downstream_capacity', 'capacity')], 'short', 0, 12)
panel('Downstream wait p50 / p99',
      'Time a call waited in line for a slot. Past the clients\' deadline (2 s in the demo), '
      'every call served is served for a client that has already left.',
      quantiles('stampede_downstream_wait_seconds'),
      's', 12, 12)

row('The admission limit (limiter.algorithm)')
panel('Admission limit vs in flight',
      'The limit in force for each mode: its own (bounded: workers + queue; coroutine: '
      'max_tasks; thread_per_request: max_threads) or, when limiter.algorithm is set, the one '
      'it finds. Put it beside the downstream capacity: Little\'s law says the right bound is '
      'capacity x call time. 0 = no limit.',
      [('stampede_limit%s' % M, 'limit {{mode}}'),
       ('stampede_limit_inflight%s' % M, 'in flight {{mode}}'),
       ('stampede_downstream_capacity', 'downstream capacity')], 'short', 0, 12)
panel('Turned away by the limit',
      '503 limit per second: requests over the adaptive limit, answered at once without '
      'touching a worker.',
      [('sum by (mode) (rate(stampede_rejected_total{reason="limit",mode=~"$mode"}[%s]))' % RATE,
        'limit {{mode}}')], 'reqps', 12, 12)
panel('Admissions by criticality',
      'What each criticality (X-Stampede-Criticality) got per second: admitted, or refused '
      '(503 shed past its share of the limit, or any other reason). Under a flood of sheddable '
      'requests the critical should stay admitted while the sheddable are refused.',
      [('sum by (criticality, result) (rate(stampede_admissions_total%s[%s]))' % (M, RATE),
        '{{criticality}} {{result}}')], 'reqps', 0, 24)

row('Shedding, cancellation, waste')
panel('Rejections by reason',
      '503s answered without running the work. Fast rejections are the point of bounding: '
      'they cost microseconds instead of a thread.',
      [('sum by (reason) (rate(stampede_rejected_total%s[%s]))' % (M, RATE), '{{reason}}')],
      'reqps', 0, 8)
panel('Cancellations by stage',
      'Work stopped because its client left: queued (removed, never ran) or running (asked '
      'to stop). Only modes with cancel_on_disconnect cancel.',
      [('sum by (stage) (rate(stampede_cancelled_total%s[%s]))' % (M, RATE), '{{stage}}'),
       ('sum(rate(stampede_client_disconnects_total%s[%s]))' % (M, RATE), 'clients gone')],
      'ops', 8, 8)
panel('Wasted work',
      'Handler seconds per second spent after the client had left: CPU and threads burnt for '
      'nobody. High in thread_per_request and blocking under impatient clients.',
      [('sum by (mode) (rate(stampede_wasted_work_seconds_total%s[%s]))' % (M, RATE), '{{mode}}')],
      's', 16, 8)

row('What it costs the process')
panel('Resident memory against the limit',
      'RSS of the server, the working sets that running requests hold (work.request_kb '
      'each), and the memory limit of its cgroup. Each OS thread adds its stack pages. '
      'Unbounded concurrency grows RSS to the limit, where the OOM killer ends the process, '
      'and every request in flight with it: the "OOM kill" markers, from the server\'s own '
      'stampede_oom_kills_total.',
      [('process_resident_memory_bytes', 'RSS'),
       ('stampede_memory_limit_bytes', 'memory limit'),
       ('stampede_request_memory_bytes', 'request working sets'),
       ('stampede_task_memory_bytes', 'task frames (coroutines)')], 'bytes', 0, 8)
panel('CPU used',
      'Cores busy in the server. With thousands of runnable threads, part of it goes to '
      'scheduling rather than work.',
      [('rate(process_cpu_seconds_total[%s])' % RATE, 'cores')], 'short', 8, 8)
panel('Thread creation time p99',
      'thread_per_request: time to create a request thread. It grows as the process has '
      'more threads.',
      quantiles('stampede_thread_spawn_seconds', (0.99,)),
      's', 16, 8)
panel('Open connections',
      'Main-port connections open now, and connections refused at http.max_connections.',
      [('stampede_connections_active', 'open'),
       ('rate(stampede_connections_refused_total[%s])' % RATE, 'refused/s')], 'short', 0, 12)
panel('Config reloads',
      'Reloads that applied (ok) and that were rejected (error: the running config stayed).',
      [('sum by (result) (increase(stampede_config_reloads_total[5m]))', '{{result}}')],
      'short', 12, 12)

row('Failure labs (/lab/*; GET /labs on the admin port for the detail)')
panel('Lost updates and oversold seats',
      'Lost updates: increments asked for minus what the counter says (racy only; mutex and '
      'atomic stay at 0). Seats left below 0: check-then-act sold more than the stock.',
      [('stampede_lab_lost_update_expected - stampede_lab_lost_update_value', 'lost updates {{variant}}'),
       ('stampede_lab_stock', 'seats left {{variant}}')], 'short', 0, 8)
panel('Leaked helpers and stuck lab work',
      'Helpers alive after their request ended (the goleak count), and lab work waiting now '
      'for a lock, a hand-over or its children. POST /labs/reset frees both.',
      [('stampede_lab_leaked', 'leaked {{variant}}'), ('stampede_lab_waits', 'stuck waits')],
      'short', 8, 8)
panel('Detectors',
      'Lock cycles found by the wait-for graph, and starved pools found by the watchdog.',
      [('increase(stampede_lab_deadlocks_total[5m])', 'deadlocks {{variant}}'),
       ('increase(stampede_lab_starved_total[5m])', 'starved')], 'short', 16, 8)

dashboard = {
    'uid': 'stampede-main',
    'title': 'stampede: unbounded vs bounded concurrency',
    'description': 'What each execution mode does under load: tasks vs threads, traffic, '
                   'latency, shedding, cancellation, waste and cost.',
    'tags': ['stampede'],
    'timezone': 'browser',
    'schemaVersion': 39,
    'version': 1,
    'editable': True,
    'graphTooltip': 1,
    'time': {'from': 'now-5m', 'to': 'now'},
    **REFRESH,
    'templating': {'list': [{
        'name': 'mode', 'label': 'mode', 'type': 'query', 'datasource': DS,
        'query': {'query': 'label_values(stampede_mode_info, mode)', 'refId': 'modes'},
        'definition': 'label_values(stampede_mode_info, mode)',
        'includeAll': True, 'multi': True, 'allValue': '.*',
        'current': {'selected': True, 'text': ['All'], 'value': ['$__all']},
        'refresh': 1, 'sort': 1,
    }]},
    'annotations': {'list': [
        {'builtIn': 1, 'datasource': {'type': 'grafana', 'uid': '-- Grafana --'},
         'enable': True, 'hide': True, 'iconColor': 'rgba(0, 211, 255, 1)',
         'name': 'Annotations & Alerts', 'type': 'dashboard'},
        {'name': 'Mode changes', 'datasource': DS, 'enable': True, 'iconColor': 'orange',
         'expr': 'changes(stampede_mode_info[1m]) > 0 and stampede_mode_info == 1',
         'titleFormat': 'mode: {{mode}}', 'textFormat': 'execution mode switched to {{mode}}',
         'step': '5s'},
        presenter(DS),
    ] + [restarts(DS)]},
    'panels': panels,
}

# The fleet (docker-compose --profile fleet): HAProxy in front of three replicas, one downstream.
panels = []
_next_id[0] = 1
_y[0] = 0
F = {'ds': FLEET_DS}
R = '{role="replica"}'
row('What the clients get, through HAProxy')
panel('Answers through HAProxy by class',
      'What the fleet\'s clients get: 2xx is goodput; 5xx is a replica\'s 503, a timeout, or '
      'no replica left. In a cascade the 2xx line falls as replicas die one after another.',
      [('sum by (code) (rate(haproxy_backend_http_responses_total{proxy="replicas"}[%s]))'
        % RATE, '{{code}}')], 'reqps', 0, 12, **F)
panel('Replicas in service',
      'HAProxy\'s health checks (on each replica\'s admin port) against the replicas that '
      'answer Prometheus: a dead replica leaves both.',
      [('sum(haproxy_server_status{proxy="replicas",state="UP"})', 'in service (HAProxy)'),
       ('sum(up%s)' % R, 'scraped')], 'short', 12, 12, **F)
row('The replicas: memory, deaths, retries')
panel('Replica RSS against the memory limit',
      'Each replica\'s resident memory and its cgroup\'s limit. An unbounded replica climbs to '
      'the limit and is OOM-killed; its load moves to the others, which follow.',
      [('process_resident_memory_bytes%s' % R, 'RSS {{instance}}'),
       ('max(stampede_memory_limit_bytes%s)' % R, 'limit')], 'bytes', 0, 12, **F)
panel('OOM kills per replica',
      'The kernel\'s count of OOM kills in each replica\'s cgroup, as the replica itself '
      'exports it: its supervisor restarts it in the same cgroup, with a back-off.',
      [('stampede_oom_kills_total%s' % R, '{{instance}}')], 'short', 12, 12, **F)
panel('Downstream calls from the replicas',
      'Calls by outcome, and the retries the replicas add: each retry is more load on a '
      'downstream already in trouble (the metastable storm\'s sustaining loop).',
      [('sum by (outcome) (rate(stampede_downstream_calls_total%s[%s]))' % (R, RATE),
        '{{outcome}}'),
       ('sum(rate(stampede_downstream_retries_total%s[%s]))' % (R, RATE), 'retries')],
      'reqps', 0, 24, **F)
row('The downstream')
panel('Downstream queue and work',
      'The downstream stampede\'s queue and running work. After a trigger (loadtest/'
      'fleet-trigger cuts its capacity), a queue that stays full once the trigger is over is '
      'a metastable failure.',
      [('stampede_queue_depth{role="downstream"}', 'queued'),
       ('sum(stampede_tasks{role="downstream",state="running"})', 'running'),
       ('stampede_downstream_capacity{role="downstream"}', 'slots')], 'short', 0, 24, **F)
fleet_dashboard = {
    'uid': 'stampede-fleet',
    'title': 'stampede: the fleet (cascades and retry storms)',
    'description': 'Three replicas behind HAProxy in front of one downstream: what the clients '
                   'get, the replicas\' memory and deaths, the retries, the downstream\'s queue.',
    'tags': ['stampede'], 'timezone': 'browser', 'schemaVersion': 39, 'version': 1,
    'editable': True, 'graphTooltip': 1, 'time': {'from': 'now-10m', 'to': 'now'}, **REFRESH,
    'templating': {'list': []},
    'annotations': {'list': [restarts(FLEET_DS, ' {{instance}}'), presenter(FLEET_DS)]},
    'panels': panels,
}

if __name__ == '__main__':
    here = os.path.dirname(os.path.abspath(__file__))
    for name, d in (('stampede.json', dashboard), ('fleet.json', fleet_dashboard)):
        with open(os.path.join(here, name), 'w') as f:
            json.dump(d, f, indent=2)
            f.write('\n')
