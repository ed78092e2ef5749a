/* The storage of the per-thread state (thread_state.h). */
#include "thread_state.h"

__thread struct ht_thread ht_thread;
