/* Whether programs this process execs are traced too. */
#ifndef HEAPTRACE_EXEC_ENV_H
#define HEAPTRACE_EXEC_ENV_H

/* With HEAPTRACE_FOLLOW_EXEC=0, takes libheaptrace out of LD_PRELOAD so
 * that children started with exec are not traced. */
void exec_env_apply(void);

#endif
