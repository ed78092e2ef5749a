/* Stripes: a counter that every thread updates is kept as several copies,
 * each on a cache line of its own, and a thread updates only the copy of
 * its stripe; readers add the copies up. Threads are numbered in the order
 * they first ask, so as many threads as there are copies never write the
 * same line, and more share lines in turn rather than all at once. */
#ifndef HEAPTRACE_STRIPE_H
#define HEAPTRACE_STRIPE_H

#define CACHE_LINE 64

/* This thread's number plus one; 0 until it first asks. */
extern __thread unsigned ht_stripe;

unsigned stripe_assign(void);

/* This thread's number: callers take it modulo their number of copies. */
static inline unsigned thread_stripe(void)
{
	unsigned s = ht_stripe;
	return s ? s - 1 : stripe_assign();
}

#endif
