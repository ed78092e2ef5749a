/* What programs this process execs inherit: whether they are traced too,
 * and that HEAPTRACE_HTTP's port is this process's. */
#ifndef HEAPTRACE_EXEC_ENV_H
#define HEAPTRACE_EXEC_ENV_H

/* With HEAPTRACE_FOLLOW_EXEC=0, takes libheaptrace out of LD_PRELOAD so
 * that children started with exec are not traced. With HEAPTRACE_HTTP,
 * marks this process the owner of the port, or turns HTTP off here when
 * a living ancestor owns it. */
void exec_env_apply(void);

#endif
