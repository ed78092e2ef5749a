/* The tracer's state word: acquire/release so that a thread that sees ON
 * also sees the tables the start-up mapped before it. */
#include "tracer_state.h"

#include <stdatomic.h>
#include <stddef.h>

#include "log.h"

static _Atomic int state = TRACER_OFF;
static const char *_Atomic error_text;

int tracer_state(void)
{
	return atomic_load_explicit(&state, memory_order_acquire);
}

int tracer_begin(void)
{
	int off = TRACER_OFF;
	return atomic_compare_exchange_strong(&state, &off, TRACER_STARTING);
}

void tracer_on(void)
{
	int starting = TRACER_STARTING;
	atomic_compare_exchange_strong_explicit(&state, &starting, TRACER_ON,
						memory_order_release,
						memory_order_relaxed);
}

void tracer_fail(const char *why)
{
	const char *none = NULL;
	if (atomic_compare_exchange_strong(&error_text, &none, why))
		ht_log("%s; sampling stops, the program runs on", why);
	atomic_store(&state, TRACER_FAILED);
}

const char *tracer_error(void)
{
	return atomic_load(&error_text);
}
