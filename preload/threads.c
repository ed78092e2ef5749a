/* Interposes pthread_create, pthread_join and pthread_detach.
 *
 * A new thread registers itself (find-or-create by its pthread_t) when it
 * starts, and a key destructor marks it exited; the creator never touches
 * the registry, so no ordering between the two is assumed. A join returns
 * only after the thread's destructors ran, so the entry it removes always
 * exists by then. A detach that comes before the thread registered leaves
 * a marker the thread finds. Detached threads leave the registry when they
 * exit; joinable ones stay, as "unjoined", until joined.
 *
 * The lock also serialises intalloc.c. It is held across fork (taken in
 * the prefork hook), so that a child never inherits the registry or a
 * chunk of intalloc half-updated by a thread that does not exist there. */
#include "threads.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "export.h"
#include "forklock.h"
#include "intalloc.h"
#include "outbuf.h"
#include "real.h"
#include "sampler.h"
#include "thread_state.h"
#include "stacktab.h"
#include "tracer_state.h"
#include "unwind.h"

#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) int_alloc(sz)
#define uthash_free(ptr, sz) int_free(ptr, sz)
#define uthash_nonfatal_oom(obj) ((void)(obj))
#include <uthash.h>


struct thread_entry {
	pthread_t id;
	uint32_t stack;  /* creation stack (stacktab id), 0 = unknown */
	int started, exited, detached;
	uint64_t stack_bytes, guard_bytes; /* threads.h: struct thread_group */
	uintptr_t sp; /* an address on its stack, for `heaptrace rss` */
	UT_hash_handle hh;
};

struct start_arg {
	void *(*fn)(void *);
	void *arg;
	uint32_t stack;
	int detached;
	uint64_t order; /* creation order, for the sampler's stream */
	uint64_t stack_bytes, guard_bytes;
};

static struct fork_lock lock = FORK_LOCK_INIT;
static _Thread_local int holding; /* at or inside lock (forklock.h) */
static struct thread_entry *threads;
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static uint64_t threads_created; /* under lock */

/* Under lock. */
static struct thread_entry *entry_for(pthread_t id)
{
	struct thread_entry *e;
	HASH_FIND(hh, threads, &id, sizeof(id), e);
	if (e)
		return e;
	e = int_alloc(sizeof(*e));
	if (!e)
		return NULL;
	e->id = id;
	HASH_ADD(hh, threads, id, sizeof(id), e);
	struct thread_entry *added;
	HASH_FIND(hh, threads, &id, sizeof(id), added);
	if (added != e) /* the add ran out of memory */
		int_free(e, sizeof(*e));
	return added;
}

static void drop(struct thread_entry *e)
{
	HASH_DEL(threads, e);
	int_free(e, sizeof(*e));
}

static void on_thread_exit(void *unused)
{
	(void)unused;
	pthread_t self = pthread_self();
	struct thread_entry *e;
	fork_lock_take(&lock, &holding);
	HASH_FIND(hh, threads, &self, sizeof(self), e);
	if (e) {
		if (e->detached)
			drop(e);
		else
			e->exited = 1;
	}
	fork_lock_drop(&lock, &holding);
}

static void make_key(void)
{
	pthread_key_create(&exit_key, on_thread_exit);
}

static void *thread_start(void *p)
{
	struct start_arg a = *(struct start_arg *)p;
	int was = guard_enter();
	sampler_thread_start(a.order);
	/* The thread's descriptor sits above its stack (x86-64 glibc). */
	unwind_thread_start((uintptr_t)pthread_self());
	fork_lock_take(&lock, &holding);
	int_free(p, sizeof(a));
	struct thread_entry *e = entry_for(pthread_self());
	if (e) {
		e->stack = a.stack;
		e->sp = (uintptr_t)&a;
		e->stack_bytes = a.stack_bytes;
		e->guard_bytes = a.guard_bytes;
		e->started = 1;
		e->detached |= a.detached;
	}
	fork_lock_drop(&lock, &holding);
	pthread_setspecific(exit_key, (void *)1);
	guard_restore(was);
	return a.fn(a.arg);
}

/* The stack and guard a new thread gets: the attribute's, else the
 * process default (RLIMIT_STACK's at start, or what
 * pthread_setattr_default_np set). glibc keeps the end of a stack the
 * program supplied and reports its start as that end less the size, so
 * without one (end NULL) start + size wraps to 0: a stack the program
 * supplied is its own memory, counted where it got it, so 0 here. */
static void stack_sizes(const pthread_attr_t *attr, uint64_t *stack,
			uint64_t *guard)
{
	pthread_attr_t def;
	void *addr = NULL;
	size_t size = 0, guard_size = 0;
	*stack = *guard = 0;
	if (!attr) {
		if (pthread_getattr_default_np(&def))
			return;
		attr = &def;
	}
	if (pthread_attr_getstack(attr, &addr, &size) == 0 &&
	    (uintptr_t)addr + size != 0)
		size = 0;
	else if (pthread_attr_getstacksize(attr, &size) ||
		 pthread_attr_getguardsize(attr, &guard_size))
		size = guard_size = 0;
	if (attr == &def)
		pthread_attr_destroy(&def);
	*stack = size;
	*guard = size ? guard_size : 0;
}

HT_EXPORT int pthread_create(pthread_t *id, const pthread_attr_t *attr,
			     void *(*fn)(void *), void *arg)
{
	if (!ht_real.pthread_create)
		real_resolve();
	if (ht_thread.guard)
		return ht_real.pthread_create(id, attr, fn, arg);
	int was = guard_enter();
	pthread_once(&key_once, make_key);
	fork_lock_take(&lock, &holding);
	struct start_arg *a = int_alloc(sizeof(*a));
	if (a)
		a->order = ++threads_created;
	fork_lock_drop(&lock, &holding);
	if (!a) {
		guard_restore(was);
		return ht_real.pthread_create(id, attr, fn, arg);
	}
	a->fn = fn;
	a->arg = arg;
	stack_sizes(attr, &a->stack_bytes, &a->guard_bytes);
	if (attr) {
		int state;
		if (pthread_attr_getdetachstate(attr, &state) == 0)
			a->detached = state == PTHREAD_CREATE_DETACHED;
	}
	if (tracer_state() == TRACER_ON) {
		const uintptr_t *frames;
		int n = unwind_capture(&frames, (int)ht_config.max_frames);
		struct stack_rec *r =
		    n < 0 ? NULL
			  : stacktab_intern(&ht_stacks, frames, (uint32_t)n);
		a->stack = r ? stacktab_id(&ht_stacks, r) : 0;
	}
	guard_restore(was);
	int rc = ht_real.pthread_create(id, attr, thread_start, a);
	if (rc) {
		fork_lock_take(&lock, &holding);
		int_free(a, sizeof(*a));
		fork_lock_drop(&lock, &holding);
	}
	return rc;
}

HT_EXPORT int pthread_join(pthread_t id, void **ret)
{
	if (!ht_real.pthread_join)
		real_resolve();
	int rc = ht_real.pthread_join(id, ret);
	if (rc == 0) {
		struct thread_entry *e;
		fork_lock_take(&lock, &holding);
		HASH_FIND(hh, threads, &id, sizeof(id), e);
		if (e)
			drop(e);
		fork_lock_drop(&lock, &holding);
	}
	return rc;
}

HT_EXPORT int pthread_detach(pthread_t id)
{
	if (!ht_real.pthread_detach)
		real_resolve();
	/* Mark first: once detached, the thread may exit and its id be
	 * reused at any moment. */
	fork_lock_take(&lock, &holding);
	struct thread_entry *e = entry_for(id);
	if (e) {
		if (e->exited)
			drop(e);
		else
			e->detached = 1;
	}
	fork_lock_drop(&lock, &holding);
	return ht_real.pthread_detach(id);
}

struct stack_count {
	struct thread_group g;
	UT_hash_handle hh;
};

void threads_each(void (*fn)(void *arg, const struct thread_group *g),
		  void *arg)
{
	struct stack_count *counts = NULL, *c, *tmp;
	struct thread_entry *e, *etmp;
	fork_lock_take(&lock, &holding);
	HASH_ITER(hh, threads, e, etmp)
	{
		if (!e->started)
			continue;
		HASH_FIND(hh, counts, &e->stack, sizeof(e->stack), c);
		if (!c) {
			c = int_alloc(sizeof(*c));
			if (!c)
				continue;
			c->g.stack = e->stack;
			HASH_ADD(hh, counts, g.stack, sizeof(c->g.stack), c);
			struct stack_count *added;
			HASH_FIND(hh, counts, &e->stack, sizeof(e->stack), added);
			if (added != c) {
				int_free(c, sizeof(*c));
				continue;
			}
		}
		if (e->exited)
			c->g.unjoined++;
		else
			c->g.live++;
		c->g.stack_bytes += e->stack_bytes;
		c->g.guard_bytes += e->guard_bytes;
	}
	fork_lock_drop(&lock, &holding);
	HASH_ITER(hh, counts, c, tmp)
	{
		fn(arg, &c->g);
	}
	fork_lock_take(&lock, &holding);
	HASH_ITER(hh, counts, c, tmp)
	{
		HASH_DEL(counts, c);
		int_free(c, sizeof(*c));
	}
	fork_lock_drop(&lock, &holding);
}

struct put_state {
	struct outbuf *o;
	struct thread_group total;
};

static void put_counts(struct outbuf *o, const struct thread_group *g)
{
	out_u64(o, g->live);
	out_field_u64(o, g->unjoined);
	out_field_u64(o, g->stack_bytes);
	out_field_u64(o, g->guard_bytes);
}

static void put_group(void *arg, const struct thread_group *g)
{
	struct put_state *p = arg;
	struct outbuf *o = p->o;
	p->total.live += g->live;
	p->total.unjoined += g->unjoined;
	p->total.stack_bytes += g->stack_bytes;
	p->total.guard_bytes += g->guard_bytes;
	out_str(o, "# threads: ");
	put_counts(o, g);
	out_str(o, " @");
	if (g->stack) {
		const struct stack_rec *r = stacktab_rec(&ht_stacks, g->stack);
		out_frames(o, r->frames, r->nframes);
	}
	out_str(o, "\n");
}

void threads_put(struct outbuf *o)
{
	struct put_state p = {o, {0, 0, 0, 0, 0}};
	threads_each(put_group, &p);
	out_str(o, "# threads_total: ");
	put_counts(o, &p.total);
	out_str(o, "\n");
	/* Where each running thread's stack is, by creation stack: `rss`
	 * finds its mapping's resident bytes in the `# smaps:` lines. */
	struct thread_entry *e, *tmp;
	fork_lock_take(&lock, &holding);
	HASH_ITER(hh, threads, e, tmp)
	{
		if (!e->started || e->exited || !e->stack_bytes)
			continue;
		out_str(o, "# thread_at: 0x");
		out_hex(o, e->sp);
		out_str(o, " @");
		if (e->stack) {
			const struct stack_rec *r = stacktab_rec(&ht_stacks, e->stack);
			out_frames(o, r->frames, r->nframes);
		}
		out_str(o, "\n");
	}
	fork_lock_drop(&lock, &holding);
}

void threads_prefork(void)
{
	fork_lock_prefork(&lock, &holding);
}

void threads_postfork_parent(void)
{
	fork_lock_postfork(&lock);
}

/* Only the forking thread runs in the child: the others' entries go,
 * unless the fork came from a handler that interrupted this thread inside
 * the lock, in the middle of changing them. */
void threads_postfork_child(void)
{
	pthread_t self = pthread_self();
	struct thread_entry *e, *tmp;
	if (lock.prefork_took) {
		HASH_ITER(hh, threads, e, tmp)
		{
			if (!pthread_equal(e->id, self))
				drop(e);
		}
	}
	fork_lock_postfork(&lock);
}
