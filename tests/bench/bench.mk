# tests/bench/bench.mk: the benchmark's programs and `make bench`.
# Included from the top-level Makefile; also usable alone for its programs:
#   make -f tests/bench/bench.mk bench-progs
# `make bench` runs the full benchmark (about 15 minutes on 2 cores) and
# writes docs/benchmarks.md, then prints symbolize.py's figures (reading
# dumps, for that file's section by hand); `make bench-quick` is a smoke run.

B   ?= build
CC  ?= cc
BENCH_CFLAGS := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -O2 -g \
                -fno-omit-frame-pointer -pthread
BENCH_PROGS := $(B)/bench/workload $(B)/bench/dumpcost $(B)/bench/pairs $(B)/bench/spawn \
               $(B)/bench/mmaps \
               $(B)/bench/libforward.so

bench-progs: $(BENCH_PROGS)

$(B)/bench/libforward.so: tests/bench/forward.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -fPIC -shared -o $@ $< -ldl

# no inlining or sibling calls: every level of the recursion keeps its frame
$(B)/bench/dumpcost: tests/bench/dumpcost.c tests/bench/xorshift.h
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -fno-inline -fno-optimize-sibling-calls -o $@ $<

$(B)/bench/workload: tests/bench/xorshift.h

$(B)/bench/workload $(B)/bench/pairs $(B)/bench/spawn $(B)/bench/mmaps: $(B)/bench/%: tests/bench/%.c
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

# symbolize.py: reading dumps (heaptrace top next to go tool pprof -top),
# a big clang++ one and the small ones of the suite's programs
bench: $(B)/libheaptrace.so bench-progs $(TEST_PROGS)
	python3 tests/bench/run.py $(BENCH_ARGS)
	python3 tests/bench/symbolize.py

bench-quick: $(B)/libheaptrace.so bench-progs
	python3 tests/bench/run.py --quick $(BENCH_ARGS)

.PHONY: bench bench-quick bench-progs
