#!/usr/bin/env bash
# install-peers.sh installs the real reverse proxies that ci/peers/* configure
# (Debian bookworm packages) and leaves none of their system services running.
#
# The kit starts every peer itself, as a foreground process on a free
# loopback port with its files in a private temporary directory, so the
# packages' own daemons are never wanted: they would only hold ports 80,
# 6081 and friends. Safe to run again: packages already present are kept.
#
# Usage: ci/install-peers.sh        (as root)
set -euo pipefail

packages=(nginx-light haproxy caddy apache2 varnish lighttpd)
binaries=(nginx haproxy caddy apache2 varnishd lighttpd)

if [[ $(id -u) -ne 0 ]]; then
	echo "install-peers: must run as root (apt-get install)" >&2
	exit 2
fi

missing=()
for i in "${!binaries[@]}"; do
	command -v "${binaries[$i]}" >/dev/null 2>&1 || missing+=("${packages[$i]}")
done

if ((${#missing[@]} > 0)); then
	# policy-rc.d exit status 101 tells invoke-rc.d "action forbidden", the
	# Debian way to install a daemon without starting it (see
	# /usr/share/doc/init-system-helpers/README.policy-rc.d). Keep one that
	# is already there (container images ship one); remove only our own.
	policy=/usr/sbin/policy-rc.d
	own_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		own_policy=1
	fi
	trap '[[ -n $own_policy ]] && rm -f "$policy"' EXIT

	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# A postinst that still fails to start its service (no init system here)
	# leaves the package half-configured; configure again and carry on, the
	# binaries are what the kit needs and they are checked below.
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
		echo "install-peers: apt-get install reported errors; configuring what was unpacked" >&2
		dpkg --configure -a || true
	fi
fi

# Stop any daemon a package managed to start anyway, by the pid its own pid
# file names, so nothing from the system packages holds a port.
for pidfile in /run/nginx.pid /run/haproxy.pid /run/apache2/apache2.pid \
	/run/varnishd.pid /run/varnish.pid /run/lighttpd.pid /run/caddy.pid; do
	[[ -s $pidfile ]] || continue
	pid=$(<"$pidfile")
	if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		echo "install-peers: stopping system daemon pid $pid ($pidfile)" >&2
		kill -TERM "$pid" || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
done

status=0
for b in "${binaries[@]}"; do
	if ! command -v "$b" >/dev/null 2>&1; then
		echo "install-peers: $b is missing after install" >&2
		status=1
	fi
done
if ((status == 0)); then
	# First lines only, read by sed to the end: `| head -1` would close the
	# pipe early and, under pipefail, turn the writer's SIGPIPE into exit 141.
	echo "install-peers: ok:"
	nginx -v 2>&1 | sed -n '1s/^/  /p'
	haproxy -v 2>&1 | sed -n '1s/^/  /p'
	caddy version 2>&1 | sed -n '1s/^/  caddy /p'
	apache2 -v 2>&1 | sed -n '1s/^/  /p'
	varnishd -V 2>&1 | sed -n '1s/^/  /p'
	lighttpd -v 2>&1 | sed -n '1s/^/  /p'
fi
exit $status
