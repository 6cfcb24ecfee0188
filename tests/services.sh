#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432) and RabbitMQ (127.0.0.1:5672) are up for the tests:
# starts them when they are down, and installs Debian's packages (as root) when missing.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 1; done
  log "nothing answers on 127.0.0.1:$1 after 60 s"; return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then log "$* missing and not root: install it (apt-get install $*)"; exit 1; fi
  log "installing $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! port_open 5432; then
  if ! command -v pg_ctlcluster >/dev/null || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
    version=$(ls /etc/postgresql | sort -V | tail -n1)
    # A test machine only: trust local connections, as the development machines do.
    printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
      > "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_port 5432
fi

if ! port_open 5672; then
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  log "starting RabbitMQ"
  rabbitmq-server -detached
  wait_port 5672
  rabbitmqctl await_startup >/dev/null
fi
# promtool checks the Prometheus config and alert rules in tests/deploy.
command -v promtool >/dev/null || apt_install --no-install-recommends prometheus
# systemd-analyze verifies the units in deploy/systemd.
command -v systemd-analyze >/dev/null || apt_install --no-install-recommends systemd
# Debian's chromium for the browser test (Playwright drives it; it never downloads one).
command -v chromium >/dev/null || apt_install chromium
log "PostgreSQL and RabbitMQ are up"
