/* C++'s operator new and delete (cxxnew.c). */
#ifndef HEAPTRACE_CXXNEW_H
#define HEAPTRACE_CXXNEW_H

/* After real_resolve() and unwind_init(): when the next operator new is
 * libstdc++'s, whose plain and nothrow forms are malloc, those forms are
 * passed to it by a tail call and sampled by the malloc inside. */
void cxxnew_init(void);

#endif
