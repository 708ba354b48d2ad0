#!/usr/bin/env bash
# Make sure a Docker engine answers: install docker.io when dockerd is missing, start
# dockerd in the background when no engine responds, wait until `docker info` works.
# Idempotent: does nothing when an engine already answers.
# Env: ADRANGE_DOCKERD_LOG (default /var/log/adrange-dockerd.log),
#      ADRANGE_DOCKERD_WAIT seconds to wait for the engine (default 60).
set -euo pipefail

log=${ADRANGE_DOCKERD_LOG:-/var/log/adrange-dockerd.log}
wait_s=${ADRANGE_DOCKERD_WAIT:-60}
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

engine_up() { $SUDO docker info >/dev/null 2>&1; }

if engine_up; then echo "ensure_docker: engine already running"; exit 0; fi

if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
  echo "ensure_docker: installing docker.io"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq docker.io >/dev/null
fi

# A pid file left by a killed daemon blocks a new one, also when its pid now belongs to an
# unrelated process (dockerd then takes the dead containerd for running and never starts).
clear_stale_pid() {  # FILE NAME: remove FILE unless its pid is a live process called NAME
  local pid
  [ -f "$1" ] || return 0
  pid=$(cat "$1" 2>/dev/null || true)
  if [ -z "$pid" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$2" ]; then $SUDO rm -f "$1"; fi
}

if ! pgrep -x dockerd >/dev/null; then
  clear_stale_pid /var/run/docker.pid dockerd
  clear_stale_pid /var/run/docker/containerd/containerd.pid containerd
  echo "ensure_docker: starting dockerd (log: $log)"
  $SUDO mkdir -p "$(dirname "$log")"
  # setsid: the daemon outlives this shell and the caller's process group.
  $SUDO setsid dockerd >>"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$wait_s"); do
  if engine_up; then echo "ensure_docker: engine ready"; exit 0; fi
  sleep 1
done

echo "ensure_docker: the Docker engine did not answer within ${wait_s}s." >&2
echo "ensure_docker: last lines of $log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
