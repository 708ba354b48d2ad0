#!/usr/bin/env bash
# Install what a fresh Debian machine lacks for adrange: venv + packages, redis-server,
# and (with --docker / --browser) docker.io with a running dockerd, and chromium.
# Idempotent: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
want_docker=0; want_browser=0
for arg in "$@"; do
  case "$arg" in
    --docker) want_docker=1 ;;
    --browser) want_browser=1 ;;
    -h|--help) echo "usage: deploy/setup.sh [--docker] [--browser]"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

need=()
command -v redis-server >/dev/null || need+=(redis-server)
if [ "$want_docker" = 1 ]; then
  command -v dockerd >/dev/null || need+=(docker.io)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  # Traffic captures (captures.enabled): tcpdump in each box's network namespace.
  command -v tcpdump >/dev/null || need+=(tcpdump)
fi
if [ "$want_browser" = 1 ]; then
  command -v chromium >/dev/null || need+=(chromium)
  # The board is Chinese-first: a CJK font so screenshots and kiosk browsers show the names.
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# Checker environments are venvs of Debian's own interpreter (runnable by the checkers' users).
/usr/bin/python3 -c 'import venv' 2>/dev/null || need+=(python3 python3-venv)
if [ "${#need[@]}" -gt 0 ]; then echo "setup: installing ${need[*]}"; apt_install "${need[@]}"; fi

if [ ! -x .venv/bin/python ]; then echo "setup: creating .venv"; python3 -m venv .venv; fi
stamp=.venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)
if [ ! -f "$stamp" ]; then
  echo "setup: installing python packages"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  rm -f .venv/.installed-*; touch "$stamp"
fi

if [ "$want_docker" = 1 ]; then deploy/ensure_docker.sh; fi
