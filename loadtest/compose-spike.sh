#!/bin/sh
# The spike scenario for the docker-compose stack's load generator (profile "load"):
# steady load, then a burst of many more connections, then steady again, against the
# stampede service. Bounded in connections and time; watch it in Grafana.
set -eu
target=${TARGET:-http://stampede:8080}
path=${WORK_PATH:-/work/io?ms=100}
steady=${STEADY_CONNECTIONS:-8}
burst=${BURST_CONNECTIONS:-1000}
lua=/loadtest/wrk/stampede.lua
[ "$burst" -le 4000 ] || { echo "BURST_CONNECTIONS is capped at 4000" >&2; exit 2; }
while true; do
  echo "steady: $steady connections on $path for 20s"
  wrk -t2 -c"$steady" -d20s -s "$lua" "$target" -- "$path" | grep -v '^STAMPEDE_WRK'
  echo "spike: +$burst connections for 15s"
  wrk -t2 -c"$steady" -d15s -s "$lua" "$target" -- "$path" >/dev/null &
  wrk -t2 -c"$burst" -d15s -s "$lua" "$target" -- "$path" | grep -v '^STAMPEDE_WRK'
  wait
  [ "${REPEAT:-1}" = 1 ] || break
done
