# heaptrace: `make` builds the preload and the test programs, `make check`
# tests, `make demo` runs the walkthrough, `make bench` measures.

CC      ?= cc
CXX     ?= c++
PREFIX  ?= /usr/local
WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
PRELOAD_CFLAGS := -std=c11 $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden \
                  -fno-omit-frame-pointer -ftls-model=initial-exec -pthread
# zlib (dump compression) is linked in statically with its symbols hidden:
# see preload/gzout.c.
PRELOAD_LDFLAGS := -shared -pthread -Wl,-z,now -Wl,--no-undefined -lm \
                   -Wl,-Bstatic -lz -Wl,-Bdynamic -Wl,--exclude-libs,libz.a
TEST_CFLAGS := -std=c11 $(WARN) -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -fno-inline -pthread
TEST_CXXFLAGS := -std=c++17 $(WARN) -O1 -g -fno-omit-frame-pointer -fno-inline -pthread

B := build
PRELOAD_SRC := $(wildcard preload/*.c)
PRELOAD_HDR := $(wildcard preload/*.h)
PRELOAD_OBJ := $(PRELOAD_SRC:preload/%.c=$(B)/preload/%.o)
TEST_C      := $(wildcard tests/progs/*.c)
TEST_CXX    := $(wildcard tests/progs/*.cc)
TEST_PROGS  := $(TEST_C:tests/progs/%.c=$(B)/tests/%) $(TEST_CXX:tests/progs/%.cc=$(B)/tests/%)

.DEFAULT_GOAL := all
include tests/progs/extra.mk
include tests/bench/bench.mk

all: $(B)/libheaptrace.so $(TEST_PROGS) $(EXTRA_TEST_PROGS)

$(B)/preload/%.o: preload/%.c $(PRELOAD_HDR)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PRELOAD_CFLAGS) -c $< -o $@

# C++'s operator new throws through heaptrace's, whose frames the unwinder
# must be able to pass (the default on x86-64, said here): preload/cxxnew.c.
$(B)/preload/cxxnew.o $(B)/ubsan/obj/cxxnew.o: PRELOAD_CFLAGS += -fasynchronous-unwind-tables

$(B)/libheaptrace.so: $(PRELOAD_OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(PRELOAD_LDFLAGS)

# The headers the test programs share (tests/progs/*.h).
$(TEST_PROGS): $(wildcard tests/progs/*.h)

$(B)/tests/%: tests/progs/%.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -ldl

$(B)/tests/%: tests/progs/%.cc
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -o $@ $< -ldl

# The demo's programs are built as a service would be: optimised, with
# debug info, inlining left on.
DEMO_CFLAGS := -std=c11 $(WARN) -D_GNU_SOURCE -O2 -g -pthread
DEMO_PROGS := $(B)/grow $(B)/collector $(B)/collector-fixed $(B)/collector_client

$(B)/grow $(B)/collector $(B)/collector_client: $(B)/%: docs/examples/%.c
	@mkdir -p $(@D)
	$(CC) $(DEMO_CFLAGS) -o $@ $<

$(B)/collector-fixed: docs/examples/collector.c
	@mkdir -p $(@D)
	$(CC) $(DEMO_CFLAGS) -DFIXED -o $@ $<

demo: deps $(B)/libheaptrace.so $(DEMO_PROGS)
	sh docs/examples/demo.sh

deps:
	@sh tests/install-deps.sh

check: deps all bench-progs
	python3 tests/run.py $(TESTS)

# A longer run of the dump-reader fuzzer than `make check` does.
FUZZ_ITERATIONS ?= 20000
FUZZ_SEED ?= $(shell date +%s)

fuzz: all
	python3 tests/fuzz_dumps.py --iterations $(FUZZ_ITERATIONS) --seed $(FUZZ_SEED) --keep $(B)/fuzz-failures

# A long run of redis-server under heaptrace with load (not part of check).
soak: deps all
	python3 tests/soak.py --seconds $(or $(SOAK_SECONDS),600)

# Plants each fault of tests/mutants.txt in a scratch copy (build/mutants)
# and runs the tests that should catch it; prints the faults that survive.
# Not part of check. MUTANTS=name1,name2 runs only those.
mutants: deps all
	python3 tests/mutants.py $(subst $(comma), ,$(MUTANTS))

comma := ,

install: $(B)/libheaptrace.so
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/heaptrace
	install -m 755 $(B)/libheaptrace.so $(DESTDIR)$(PREFIX)/lib/libheaptrace.so
	cp -r tools/heaptrace_lib $(DESTDIR)$(PREFIX)/lib/heaptrace/
	install -m 755 tools/heaptrace $(DESTDIR)$(PREFIX)/lib/heaptrace/heaptrace
	ln -sf ../lib/heaptrace/heaptrace $(DESTDIR)$(PREFIX)/bin/heaptrace

clean:
	rm -rf $(B)

.PHONY: all deps check demo fuzz soak mutants install clean
