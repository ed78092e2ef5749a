/* C++'s operator new, new[], delete and delete[], in every form (plain,
 * nothrow, aligned, sized), recorded like malloc and free. An allocator
 * whose operator new does not call malloc, as tcmalloc's does not, would
 * otherwise hide every C++ allocation: with LD_PRELOAD="libheaptrace.so
 * libtcmalloc.so" each form here calls tcmalloc's (ht_real.op_new ...).
 * The stack recorded starts at the caller of new: these frames are
 * heaptrace's own and unwind.c drops them.
 *
 * The next operator new may itself call malloc, as libstdc++'s does. That
 * inner malloc must be neither sampled again nor counted down a second
 * time. On the common path the countdown is well above what the next form
 * can ask of malloc (n, 1 for n = 0, n rounded up to the alignment), so
 * the inner malloc takes its fast path and counts the bytes down; when
 * nothing did (tcmalloc), this operator does after the call. Where the
 * countdown is lower, this operator decides (and samples) itself, and
 * raises the countdown by that margin during the call, so that the inner
 * malloc cannot sample, putting back its own value afterwards. No state
 * is left to repair when the next operator new throws std::bad_alloc
 * through these frames (a countdown left raised only delays the next
 * sample by the margin), so they need no cleanup: the unwinder passes
 * them by their call frame information (-fasynchronous-unwind-tables).
 *
 * libstdc++'s plain and nothrow forms are malloc(n) and a new_handler
 * loop, and each of its deletes ends in free. Those new forms, the common
 * ones, are handed to it by a tail call when n > 0, and the malloc inside
 * samples them exactly as this operator would, by the same n; deletes go
 * straight on, and free forgets the sample. libstdc++'s operator new
 * frames, on top of such a sample's stack, are dropped like heaptrace's
 * own (unwind.c).
 *
 * With no C++ runtime after heaptrace at start (a C program that later
 * loads C++ code), the forms do what libstdc++'s do, on the real
 * allocator: allocate, call the new_handler while that fails, then throw
 * std::bad_alloc; delete is free. The runtime's new_handler and throw are
 * found by name when needed, in the global scope or else in the scope of
 * the object that called new (a library loaded RTLD_LOCAL with its own
 * libstdc++). */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cxxnew.h"
#include "export.h"
#include "livemap.h"
#include "log.h"
#include "real.h"
#include "sampler.h"
#include "tracer.h"
#include "unwind.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

enum new_form { NEW_PLAIN, NEW_NOTHROW, NEW_ALIGNED, NEW_ALIGNED_NOTHROW };

/* The next plain and nothrow forms are libstdc++'s: see cxxnew_init(). */
static _Atomic int next_is_malloc;

static int in_libstdcxx(const void *fn)
{
	Dl_info info;
	const char *base;
	if (!fn || !dladdr(fn, &info) || !info.dli_fname)
		return 0;
	base = strrchr(info.dli_fname, '/');
	return strncmp(base ? base + 1 : info.dli_fname, "libstdc++.so", 12) == 0;
}

void cxxnew_init(void)
{
	void *forms[] = {
	    (void *)ht_real.op_new.plain,	  (void *)ht_real.op_new.nothrow,
	    (void *)ht_real.op_new_array.plain,
	    (void *)ht_real.op_new_array.nothrow,
	};
	for (unsigned i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (!in_libstdcxx(forms[i]) || unwind_skip_function(forms[i]))
			return;
	/* Release: a sample taken through the tail call finds the frames
	 * to drop registered. */
	atomic_store_explicit(&next_is_malloc, 1, memory_order_release);
}

/* A symbol of the C++ runtime, for a call of new from caller. */
static void *cxx_symbol(const void *caller, const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	Dl_info info;
	if (!p && dladdr(caller, &info) && info.dli_fname && *info.dli_fname) {
		void *h = dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD);
		if (h) {
			p = dlsym(h, name);
			dlclose(h);
		}
	}
	return p;
}

/* libstdc++'s throw of std::bad_alloc, by the C++ ABI: the object is a
 * vtable pointer, two words into the class's vtable. */
__attribute__((noreturn)) static void throw_bad_alloc(const void *caller)
{
	void *(*allocate)(size_t) =
	    cxx_symbol(caller, "__cxa_allocate_exception");
	void (*cxa_throw)(void *, void *, void (*)(void *)) =
	    cxx_symbol(caller, "__cxa_throw");
	void *type = cxx_symbol(caller, "_ZTISt9bad_alloc");
	void **vtable = cxx_symbol(caller, "_ZTVSt9bad_alloc");
	void (*destroy)(void *) = cxx_symbol(caller, "_ZNSt9bad_allocD1Ev");
	if (allocate && cxa_throw && type && vtable && destroy) {
		void **e = allocate(sizeof(void *));
		e[0] = vtable + 2;
		cxa_throw(e, type, destroy);
	}
	ht_log("operator new failed and no C++ runtime is found to throw "
	       "std::bad_alloc; aborting, as a C++ runtime without exceptions does");
	abort();
}

static void *fallback_alloc(size_t n, size_t align)
{
	if (n == 0)
		n = 1; /* a distinct pointer, as operator new(0) gives */
	if (!align)
		return ht_real.malloc(n);
	void *p;
	if (align < sizeof(void *))
		align = sizeof(void *);
	return ht_real.posix_memalign(&p, align, n) ? NULL : p;
}

/* The next operator new is missing: libstdc++'s loop on the real allocator
 * (the nothrow forms return NULL at the first failure). */
__attribute__((noinline)) static void *
fallback_new(enum new_form f, size_t n, size_t align, const void *caller)
{
	for (;;) {
		void *p = fallback_alloc(n, align);
		if (p || f == NEW_NOTHROW || f == NEW_ALIGNED_NOTHROW)
			return p;
		void (*(*get)(void))(void) =
		    cxx_symbol(caller, "_ZSt15get_new_handlerv");
		void (*handler)(void) = get ? get() : NULL;
		if (!handler)
			throw_bad_alloc(caller);
		handler();
	}
}

/* The next form, or libstdc++'s work where there is none. */
static inline __attribute__((always_inline)) void *
next_new(const struct ht_real_new *next, enum new_form f, size_t n,
	 size_t align, const void *nt, const void *caller)
{
	switch (f) {
	case NEW_PLAIN:
		if (next->plain)
			return next->plain(n);
		break;
	case NEW_NOTHROW:
		if (next->nothrow)
			return next->nothrow(n, nt);
		break;
	case NEW_ALIGNED:
		if (next->aligned)
			return next->aligned(n, align);
		break;
	case NEW_ALIGNED_NOTHROW:
		if (next->aligned_nothrow)
			return next->aligned_nothrow(n, align, nt);
		break;
	}
	return fallback_new(f, n, align, caller);
}

/* The margin is the most the next form may ask of malloc, plus one. */
__attribute__((noinline)) static void *
new_slow(const struct ht_real_new *next, enum new_form f, size_t n,
	 size_t align, const void *nt, const void *caller, uint64_t margin)
{
	struct ht_thread *t = &ht_thread;
	enum sample_verdict v = SAMPLE_NO;
	if (n < t->countdown)
		t->countdown -= n;
	else
		v = sampler_slow(t, n);
	if (unlikely(v == SAMPLE_BOOT)) /* inside dlsym: it never gets here */
		return bootstrap_alloc(n, align > 16 ? align : 16);
	uint64_t left = t->countdown;
	t->countdown = left + margin < left || margin <= n ? UINT64_MAX
							   : left + margin;
	void *p = next_new(next, f, n, align, nt, caller);
	t->countdown = left;
	if (unlikely(v == SAMPLE_YES))
		tracer_record_alloc(p, n);
	return p;
}

/* The countdown's common path, and the call of the next form. Its malloc
 * is of n rounded up to the alignment, or of 1 for n = 0 (which must not
 * be sampled again: the block would be recorded twice). */
__attribute__((noinline)) static void *
new_own(const struct ht_real_new *next, enum new_form f, size_t n,
	size_t align, const void *nt, const void *caller)
{
	struct ht_thread *t = &ht_thread;
	uint64_t margin = (uint64_t)(n ? n : 1) + align + 1,
		 before = t->countdown;
	if (likely(margin > n && margin < before)) {
		void *p = next_new(next, f, n, align, nt, caller);
		if (t->countdown == before) /* no malloc of ours inside */
			t->countdown = before - n;
		return p;
	}
	return new_slow(next, f, n, align, nt, caller, margin);
}

static inline __attribute__((always_inline)) void *
op_new(const struct ht_real_new *next, enum new_form f, size_t n, size_t align,
       const void *nt)
{
	if ((f == NEW_PLAIN || f == NEW_NOTHROW) &&
	    likely(atomic_load_explicit(&next_is_malloc,
					memory_order_acquire)) &&
	    likely(n != 0)) {
		if (f == NEW_PLAIN)
			return next->plain(n);
		return next->nothrow(n, nt);
	}
	return new_own(next, f, n, align, nt, __builtin_return_address(0));
}

HT_EXPORT void *_Znwm(size_t n)
{
	return op_new(&ht_real.op_new, NEW_PLAIN, n, 0, NULL);
}

HT_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *nt)
{
	return op_new(&ht_real.op_new, NEW_NOTHROW, n, 0, nt);
}

HT_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t align)
{
	return op_new(&ht_real.op_new, NEW_ALIGNED, n, align, NULL);
}

HT_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t align,
						   const void *nt)
{
	return op_new(&ht_real.op_new, NEW_ALIGNED_NOTHROW, n, align, nt);
}

HT_EXPORT void *_Znam(size_t n)
{
	return op_new(&ht_real.op_new_array, NEW_PLAIN, n, 0, NULL);
}

HT_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *nt)
{
	return op_new(&ht_real.op_new_array, NEW_NOTHROW, n, 0, nt);
}

HT_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t align)
{
	return op_new(&ht_real.op_new_array, NEW_ALIGNED, n, align, NULL);
}

HT_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t align,
						   const void *nt)
{
	return op_new(&ht_real.op_new_array, NEW_ALIGNED_NOTHROW, n, align, nt);
}

/* delete: forget the sample, then the next form (libstdc++'s forgets it
 * in its free); a runtime older than
 * sized (C++14) or aligned (C++17) deallocation gets the plain form of
 * the family, and none at all means the block came from fallback_new. A
 * block of the bootstrap buffer is never handed on. */
enum delete_form {
	DELETE_PLAIN,
	DELETE_SIZED,
	DELETE_ALIGNED,
	DELETE_SIZED_ALIGNED,
	DELETE_NOTHROW,
	DELETE_ALIGNED_NOTHROW
};

__attribute__((noinline)) static int delete_sample(void *p)
{
	return tracer_record_free(p);
}

static inline __attribute__((always_inline)) void
op_delete(const struct ht_real_delete *next, enum delete_form f, void *p,
	  size_t n, size_t align, const void *nt)
{
	/* libstdc++'s every form ends in free, which forgets the sample. */
	if (!likely(atomic_load_explicit(&next_is_malloc,
					 memory_order_relaxed))) {
		if (unlikely(!p))
			return;
		if (unlikely(livemap_maybe(&ht_live, p)) && delete_sample(p))
			return;
	}
	switch (f) {
	case DELETE_PLAIN:
		break;
	case DELETE_SIZED:
		if (likely(next->sized)) {
			next->sized(p, n);
			return;
		}
		break;
	case DELETE_ALIGNED:
	case DELETE_SIZED_ALIGNED:
	case DELETE_ALIGNED_NOTHROW:
		if (f == DELETE_SIZED_ALIGNED && likely(next->sized_aligned)) {
			next->sized_aligned(p, n, align);
			return;
		}
		if (f == DELETE_ALIGNED_NOTHROW && likely(next->aligned_nothrow)) {
			next->aligned_nothrow(p, align, nt);
			return;
		}
		if (likely(next->aligned)) {
			next->aligned(p, align);
			return;
		}
		break;
	case DELETE_NOTHROW:
		if (likely(next->nothrow)) {
			next->nothrow(p, nt);
			return;
		}
		break;
	}
	if (likely(next->plain))
		next->plain(p);
	else
		ht_real.free(p);
}

HT_EXPORT void _ZdlPv(void *p)
{
	op_delete(&ht_real.op_delete, DELETE_PLAIN, p, 0, 0, NULL);
}

HT_EXPORT void _ZdlPvm(void *p, size_t n)
{
	op_delete(&ht_real.op_delete, DELETE_SIZED, p, n, 0, NULL);
}

HT_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t align)
{
	op_delete(&ht_real.op_delete, DELETE_ALIGNED, p, 0, align, NULL);
}

HT_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t align)
{
	op_delete(&ht_real.op_delete, DELETE_SIZED_ALIGNED, p, n, align, NULL);
}

HT_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *nt)
{
	op_delete(&ht_real.op_delete, DELETE_NOTHROW, p, 0, 0, nt);
}

HT_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align,
						   const void *nt)
{
	op_delete(&ht_real.op_delete, DELETE_ALIGNED_NOTHROW, p, 0, align, nt);
}

HT_EXPORT void _ZdaPv(void *p)
{
	op_delete(&ht_real.op_delete_array, DELETE_PLAIN, p, 0, 0, NULL);
}

HT_EXPORT void _ZdaPvm(void *p, size_t n)
{
	op_delete(&ht_real.op_delete_array, DELETE_SIZED, p, n, 0, NULL);
}

HT_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t align)
{
	op_delete(&ht_real.op_delete_array, DELETE_ALIGNED, p, 0, align, NULL);
}

HT_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t align)
{
	op_delete(&ht_real.op_delete_array, DELETE_SIZED_ALIGNED, p, n, align,
		  NULL);
}

HT_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *nt)
{
	op_delete(&ht_real.op_delete_array, DELETE_NOTHROW, p, 0, 0, nt);
}

HT_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t align,
						   const void *nt)
{
	op_delete(&ht_real.op_delete_array, DELETE_ALIGNED_NOTHROW, p, 0, align,
		  nt);
}
