#!/bin/sh
# Installs the Debian packages that building and testing need, once: the
# tests compare heaptrace against real peers (go tool pprof, google-pprof,
# jeprof, redis, tcmalloc), so they must be present on a fresh machine.
set -e
PKGS="build-essential g++ libunwind-dev uthash-dev binutils graphviz golang-go
google-perftools libgoogle-perftools-dev libjemalloc-dev redis-server
redis-tools chromium python3 valgrind zlib1g-dev nginx elfutils debuginfod
clang prometheus curl"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "tests/install-deps.sh: need root to apt-get install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing >/dev/null
