#!/bin/sh
# `make demo`: run a small leaking program under heaptrace, take a dump
# with the dump signal while it runs, and show what pprof makes of it.
set -e
top=$(cd "$(dirname "$0")/../.." && pwd)
out=$top/build/demo
rm -rf "$out"
mkdir -p "$out"
echo "== running build/grow under heaptrace (one sample per 64 KiB on average)"
HEAPTRACE_DIR=$out HEAPTRACE_RATE=65536 LD_PRELOAD=$top/build/libheaptrace.so \
	"$top/build/grow" 4 &
pid=$!
sleep 2
echo "== kill -USR1 $pid"
kill -USR1 $pid
i=0
while [ ! -e "$out/heaptrace.$pid.0001.heap" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
wait $pid
dump=$out/heaptrace.$pid.0001.heap
echo "== $dump"
head -1 "$dump"
grep -E '^# (trigger|rate|inuse_bytes|samples_live|stacks):' "$dump"
echo "== go tool pprof -top build/grow $dump"
go tool pprof -top -symbolize=local "$top/build/grow" "$dump" 2>&1
echo "== the exit dump ($out/heaptrace.$pid.0002.heap), alloc_space"
go tool pprof -top -sample_index=alloc_space -symbolize=local "$top/build/grow" \
	"$out/heaptrace.$pid.0002.heap" 2>&1 | head -12
