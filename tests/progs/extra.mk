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

EXTRA_TEST_PROGS += $(B)/tests/sym_pie $(B)/tests/sym_nopie \
	$(B)/tests/libsym_shlib.so $(B)/tests/sym_shlib $(B)/tests/sym_inline

# C++ exceptions across a dlopen()ed library (tests/test_cxx.py).
CXX_THROW_DIR := tests/progs/cxx_throw

$(B)/tests/libcxx_throw.so: $(CXX_THROW_DIR)/lib.cc
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -fPIC -shared -o $@ $<

$(B)/tests/cxx_throw: $(CXX_THROW_DIR)/main.cc
	@mkdir -p $(@D)
	$(CXX) $(TEST_CXXFLAGS) -o $@ $< -ldl

EXTRA_TEST_PROGS += $(B)/tests/libcxx_throw.so $(B)/tests/cxx_throw
