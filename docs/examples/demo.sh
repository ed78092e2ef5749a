#!/bin/sh
# `make demo`: hunt the leak in docs/examples/collector.c with heaptrace.
#
# The collector runs under heaptrace with a dump every second while
# collector_client sends it reports at a fixed rate; then `heaptrace dump`
# takes a last dump, `heaptrace leaks` names the stack that keeps growing
# and the threads that leaked, `heaptrace top` shows the last dump, and
# `heaptrace report` writes build/demo/report.html. The fixed build
# (-DFIXED) then runs the same way and stays flat.
#
# DEMO_RATE (reports a second, default 200) and DEMO_SECONDS (default 20)
# change the load; every request of the leaky build leaves a thread
# behind, so keep their product to a few thousand.
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/demo
rate=${DEMO_RATE:-200}
seconds=${DEMO_SECONDS:-20}
heaptrace() { python3 "$top/tools/heaptrace" "$@"; }

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_service NAME PROGRAM: runs build/PROGRAM under heaptrace in
# build/demo/NAME, loads it, takes a last dump and stops it; sets $pid.
run_service() {
	dir=$out/$1
	mkdir -p "$dir"
	port=$(free_port)
	echo "\$ heaptrace run --interval 1 --dir build/demo/$1 -- build/$2 $port &"
	# Not through the shell function: $! must be the pid that `heaptrace run`
	# hands over to the service with exec.
	python3 "$top/tools/heaptrace" run --interval 1 --dir "$dir" -- "$top/build/$2" "$port" \
		>"$dir/service.log" 2>&1 &
	pid=$!
	# The first dump (after a second) shows the service before any load.
	i=0
	until [ -e "$dir/heaptrace.$pid.0001.heap" ] || [ $i -ge 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	echo "\$ collector_client $port $rate $seconds     # $rate reports/s for $seconds s"
	if ! "$top/build/collector_client" "$port" "$rate" "$seconds"; then
		kill "$pid" 2>/dev/null
		cat "$dir/service.log" >&2
		exit 1
	fi
	echo "\$ heaptrace dump $pid"
	heaptrace dump "$pid" | sed "s|$top/||"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

rm -rf "$out"
mkdir -p "$out"
cd "$top"

echo "== 1. The leaky collector: every report clones a logger that is never closed"
run_service leaky collector
leaky=$pid
echo
echo "\$ heaptrace leaks build/demo/leaky/heaptrace.$leaky.*.heap"
heaptrace leaks "$out"/leaky/heaptrace.$leaky.*.heap
last=$(ls "$out"/leaky/heaptrace.$leaky.*.heap | tail -1)
echo
echo "\$ heaptrace top -n 6 ${last#$top/}"
heaptrace top -n 6 "$last"
echo
heaptrace report "$out"/leaky/heaptrace.$leaky.*.heap -o "$out/report.html"
heaptrace timeline "$out"/leaky/heaptrace.$leaky.*.heap -o "$out/timeline.svg"
echo "\$ heaptrace report build/demo/leaky/heaptrace.$leaky.*.heap -o build/demo/report.html"
echo "\$ heaptrace timeline build/demo/leaky/heaptrace.$leaky.*.heap -o build/demo/timeline.svg"

echo
echo "== 2. The fixed collector (-DFIXED closes the logger), under the same load"
run_service fixed collector-fixed
fixed=$pid
echo
echo "\$ heaptrace leaks build/demo/fixed/heaptrace.$fixed.*.heap"
heaptrace leaks -n 3 "$out"/fixed/heaptrace.$fixed.*.heap | sed -n '1,/^Leaked threads/p'
heaptrace report "$out"/fixed/heaptrace.$fixed.*.heap -o "$out/report-fixed.html"
echo
echo "Open build/demo/report.html (the leaky run) and build/demo/report-fixed.html in a browser."
