/* Running the unwinder on a stack of heaptrace's own (framebuf.h gives
 * each thread one), so that a sample takes little of the program's stack
 * whichever unwinder walks it. */
#ifndef HEAPTRACE_ALTSTACK_H
#define HEAPTRACE_ALTSTACK_H

/* The bytes of each thread's walk stack, and of the inaccessible page
 * below it that turns an overflow into a fault rather than a write into
 * another thread's. libunwind's walk needs about 5 KiB; the rest is for a
 * signal handler of the program's that interrupts it and runs here (its
 * allocations are untraced: the guard of thread_state.h is raised). 0
 * where there is no switching code: the walk stays on the program's stack. */
#if defined(__x86_64__)
#define ALTSTACK_BYTES (64 * 1024)
#else
#define ALTSTACK_BYTES 0
#endif

/* Calls fn(arg) with the stack pointer at top (16-byte aligned, the high
 * end of the stack) and returns what it returns. The unwind information of
 * the switch leads from fn's frames back to the caller's, on the program's
 * stack, so that a walk begun in fn reaches the program's frames. */
int altstack_call(void *top, int (*fn)(void *), void *arg);

#endif
