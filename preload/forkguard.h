/* Keeps heaptrace's own walks of the loaded objects (unwinding, build ids)
 * out of the way of fork(). */
#ifndef HEAPTRACE_FORKGUARD_H
#define HEAPTRACE_FORKGUARD_H

/* 1: go ahead, and call forkguard_leave() after; 0: a fork is starting,
 * skip the walk. Never blocks. */
int forkguard_enter(void);
void forkguard_leave(void);

/* Fork hooks (lifecycle.h): walks stand aside for the fork; the child
 * counts none but its own. */
void forkguard_prefork(void);
void forkguard_postfork_parent(void);
void forkguard_postfork_child(void);

#endif
