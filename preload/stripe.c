/* Thread numbers for striped counters (stripe.h). */
#include "stripe.h"

#include <stdatomic.h>

__thread unsigned ht_stripe;

static _Atomic unsigned next_stripe;

unsigned stripe_assign(void)
{
	unsigned s = atomic_fetch_add_explicit(&next_stripe, 1,
					       memory_order_relaxed);
	ht_stripe = s + 1;
	return s;
}
