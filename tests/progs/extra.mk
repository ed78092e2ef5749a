# Test programs that need more than the default rule (shared libraries,
# non-PIE builds, optimised builds with inlining). Each adds itself to
# EXTRA_TEST_PROGS so that `make` builds it.
EXTRA_TEST_PROGS :=

# Symbolization tests of the heaptrace command: programs that write a dump
# of themselves (tests/progs/sym/selfdump.h), one per kind of ELF object.
SYM_DIR := tests/progs/sym
SYM_CFLAGS = $(TEST_CFLAGS)

$(B)/tests/sym_pie: $(SYM_DIR)/pie.c $(SYM_DIR)/selfdump.h
	@mkdir -p $(@D)
	$(CC) $(SYM_CFLAGS) -fPIE -pie -o $@ $<

$(B)/tests/sym_nopie: $(SYM_DIR)/nopie.c $(SYM_DIR)/selfdump.h
	@mkdir -p $(@D)
	$(CC) $(SYM_CFLAGS) -fno-pie -no-pie -o $@ $<

$(B)/tests/libsym_shlib.so: $(SYM_DIR)/shlib_lib.c $(SYM_DIR)/selfdump.h
	@mkdir -p $(@D)
	$(CC) $(SYM_CFLAGS) -fPIC -shared -o $@ $<

$(B)/tests/sym_shlib: $(SYM_DIR)/shlib_main.c $(B)/tests/libsym_shlib.so
	$(CC) $(SYM_CFLAGS) -o $@ $< -L$(B)/tests -lsym_shlib -Wl,-rpath,'$$ORIGIN'

$(B)/tests/sym_inline: $(SYM_DIR)/inline.cc $(SYM_DIR)/selfdump.h
	@mkdir -p $(@D)
	$(CXX) -std=c++17 $(WARN) -O2 -g -fno-omit-frame-pointer -o $@ $<

# A lambda inlined into main (eu-addr2line -i keeps its frame).
$(B)/tests/sym_lambda: $(SYM_DIR)/lambda.cc $(SYM_DIR)/selfdump.h
	@mkdir -p $(@D)
	$(CXX) -std=c++17 $(WARN) -O2 -g -fno-omit-frame-pointer -o $@ $<

# A stripped executable with exported symbols; its debug part goes to
# sym_stripped.debug, linked back by .gnu_debuglink.
$(B)/tests/sym_stripped: $(SYM_DIR)/stripped.c $(SYM_DIR)/selfdump.h
	@mkdir -p $(@D)
	$(CC) $(SYM_CFLAGS) -rdynamic -Wl,--build-id -o $@.full $<
	objcopy --only-keep-debug $@.full $@.debug
	objcopy --strip-all --add-gnu-debuglink=$@.debug $@.full $@
	rm -f $@.full

EXTRA_TEST_PROGS += $(B)/tests/sym_pie $(B)/tests/sym_nopie \
	$(B)/tests/libsym_shlib.so $(B)/tests/sym_shlib $(B)/tests/sym_inline \
	$(B)/tests/sym_lambda $(B)/tests/sym_stripped

# C++ exceptions across a dlopen()ed library (tests/test_cxx.py).
CXX_THROW_DIR := tests/progs/cxx_throw

$(B)/tests/libcxx_throw.so: $(CXX_THROW_DIR)/lib.cc
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -fPIC -shared -o $@ $<

$(B)/tests/cxx_throw: $(CXX_THROW_DIR)/main.cc
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -o $@ $< -ldl

EXTRA_TEST_PROGS += $(B)/tests/libcxx_throw.so $(B)/tests/cxx_throw

# A C program that loads C++ code after start (tests/test_cxx.py).
CXX_LATE_DIR := tests/progs/cxx_late

$(B)/tests/libcxx_late.so: $(CXX_LATE_DIR)/lib.cc
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -fPIC -shared -o $@ $<

$(B)/tests/cxx_late: $(CXX_LATE_DIR)/main.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ $< -ldl

EXTRA_TEST_PROGS += $(B)/tests/libcxx_late.so $(B)/tests/cxx_late

# The lock-free core (stack table, live map) under ThreadSanitizer, without
# interposition (tests/core/stress.c, tests/test_core.py). gcc's TSan
# runtime (libtsan2) comes with build-essential on Debian 12.
CORE_SRC := preload/stacktab.c preload/livemap.c preload/arena.c \
	preload/stripe.c

$(B)/tests/core_tsan: tests/core/stress.c $(CORE_SRC) $(PRELOAD_HDR)
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -D_GNU_SOURCE -DLIVE_SMALL_LEVEL=1024 \
		-DSTACK_LEVEL_MIN=64 -O1 -g \
		-fsanitize=thread -pthread \
		-o $@ tests/core/stress.c $(CORE_SRC)

EXTRA_TEST_PROGS += $(B)/tests/core_tsan

# The cache of frame rules (preload/cfi.c) under ThreadSanitizer
# (tests/core/rules.c), built with frame pointers for rbp-based rules.
$(B)/tests/rules_tsan: tests/core/rules.c preload/cfi.c preload/arena.c $(PRELOAD_HDR)
	@mkdir -p $(@D)
	$(CC) -std=c11 $(WARN) -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
		-fsanitize=thread -pthread \
		-o $@ tests/core/rules.c preload/cfi.c preload/arena.c

EXTRA_TEST_PROGS += $(B)/tests/rules_tsan

# The fork guard's reset in a forked child (tests/core/forkguard_child.c).
$(B)/tests/forkguard_child: tests/core/forkguard_child.c preload/forkguard.c preload/stripe.c $(PRELOAD_HDR)
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ tests/core/forkguard_child.c preload/forkguard.c preload/stripe.c

EXTRA_TEST_PROGS += $(B)/tests/forkguard_child

# Hostile programs (tests/test_hostile.py) that need more than the default
# rule: a library owning SIGUSR1 linked into its program, a dlopen()ed
# plugin, and code without unwind information.
HOSTILE_DIR := tests/progs/hostile

$(B)/tests/libhostile_first.so: $(HOSTILE_DIR)/first.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -fPIC -shared -o $@ $<

$(B)/tests/hostile_sigown: tests/progs/hostile_sigown.c $(B)/tests/libhostile_first.so
	$(CC) $(TEST_CFLAGS) -o $@ $< -L$(B)/tests -lhostile_first -Wl,-rpath,'$$ORIGIN'

EXTRA_TEST_PROGS += $(B)/tests/libhostile_first.so

$(B)/tests/hostile_nounwind.o: $(HOSTILE_DIR)/nounwind.c $(HOSTILE_DIR)/nounwind.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -g0 -fno-asynchronous-unwind-tables -fno-unwind-tables \
		-fomit-frame-pointer -c -o $@ $<

$(B)/tests/hostile_unwind: tests/progs/hostile_unwind.c $(B)/tests/hostile_nounwind.o \
		$(HOSTILE_DIR)/nounwind.h
	$(CC) $(TEST_CFLAGS) -Itests/progs -o $@ $< $(B)/tests/hostile_nounwind.o

$(B)/tests/libhostile_plugin.so: $(HOSTILE_DIR)/plugin.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -fPIC -shared -o $@ $<

EXTRA_TEST_PROGS += $(B)/tests/libhostile_plugin.so

# The preload under UndefinedBehaviorSanitizer (tests/test_ubsan.py): any
# report aborts the traced program. The runtime is linked in statically so
# that LD_PRELOAD of this one file is enough in any program; gcc ships
# libubsan.a with build-essential (libgcc-12-dev). float-cast-overflow is
# not part of gcc's -fsanitize=undefined, and the preload turns doubles
# into counts. Always gcc: clang links no sanitizer runtime into a shared
# object, so `make CC=clang` would fail here.
UBSAN_CC := gcc
UBSAN_FLAGS := -fsanitize=undefined,float-cast-overflow -fno-sanitize-recover=all
UBSAN_OBJ := $(PRELOAD_SRC:preload/%.c=$(B)/ubsan/obj/%.o)

$(B)/ubsan/obj/%.o: preload/%.c $(PRELOAD_HDR)
	@mkdir -p $(@D)
	$(UBSAN_CC) $(CFLAGS) $(PRELOAD_CFLAGS) $(UBSAN_FLAGS) -c $< -o $@

$(B)/ubsan/libheaptrace.so: $(UBSAN_OBJ)
	$(UBSAN_CC) $(CFLAGS) $(UBSAN_FLAGS) -static-libubsan -o $@ $^ $(PRELOAD_LDFLAGS)

EXTRA_TEST_PROGS += $(B)/ubsan/libheaptrace.so

# The demo's service and its load (tests/test_leaks.py runs them briefly);
# their rules are in the Makefile, next to the demo.
EXTRA_TEST_PROGS += $(B)/collector $(B)/collector_client

# The profile encoders (preload/profile.h) without the server: a program
# linked with the preload's objects writes profiles to files, of what a
# library of its own allocates (tests/core/profile_out.c,
# tests/test_profile.py).
$(B)/tests/libprofile_sites.so: tests/core/profile_sites.c tests/core/profile_sites.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -fPIC -shared -o $@ $<

$(B)/tests/profile_out: tests/core/profile_out.c $(B)/tests/libprofile_sites.so \
		$(PRELOAD_OBJ) $(PRELOAD_HDR) tests/core/profile_sites.h
	$(CC) $(TEST_CFLAGS) -o $@ tests/core/profile_out.c $(PRELOAD_OBJ) \
		-L$(B)/tests -lprofile_sites -Wl,-rpath,'$$ORIGIN' \
		-Wl,--no-undefined -lm -Wl,-Bstatic -lz -Wl,-Bdynamic -ldl

EXTRA_TEST_PROGS += $(B)/tests/libprofile_sites.so $(B)/tests/profile_out

# The same sites in the service the HTTP tests run (tests/test_profile.py),
# linked into it, not a library: a test deletes its binary.
$(B)/tests/http_service: tests/progs/http_service.c tests/core/profile_sites.c \
		tests/core/profile_sites.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -o $@ tests/progs/http_service.c tests/core/profile_sites.c

# A library whose constructor allocates before heaptrace's constructor runs
# (tests/test_untraced.py).
$(B)/tests/libctor_lib.so: tests/progs/ctor/lib.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -fPIC -shared -o $@ $<

$(B)/tests/ctor_main: tests/progs/ctor/main.c $(B)/tests/libctor_lib.so
	$(CC) $(TEST_CFLAGS) -o $@ $< -L$(B)/tests -lctor_lib -Wl,-rpath,'$$ORIGIN'

EXTRA_TEST_PROGS += $(B)/tests/libctor_lib.so $(B)/tests/ctor_main

# A counting interposer preloaded after heaptrace: the live blocks it
# saw, the truth the exit dump is held to (tests/test_untraced.py).
$(B)/tests/libcount.so: tests/progs/count/count.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -fPIC -shared -o $@ $<

EXTRA_TEST_PROGS += $(B)/tests/libcount.so
