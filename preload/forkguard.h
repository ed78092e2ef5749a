/* Keeps heaptrace's own walks of the loaded objects (unwinding, build ids)
 * out of the way of fork(). */
#ifndef HEAPTRACE_FORKGUARD_H
#define HEAPTRACE_FORKGUARD_H

/* 1: go ahead, and call forkguard_leave() after; 0: a fork is starting,
 * skip the walk. Never blocks. */
int forkguard_enter(void);
void forkguard_leave(void);

/* pthread_atfork handlers. */
void forkguard_prepare(void);
void forkguard_done(void);

#endif
