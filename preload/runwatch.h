/* What a process started by `heaptrace run` tells the run's watcher
 * (tools/heaptrace_lib/runwatch.py; docs/format.md, "The run socket"). */
#ifndef HEAPTRACE_RUNWATCH_H
#define HEAPTRACE_RUNWATCH_H

/* At start-up, after config_load: reads HEAPTRACE_RUN. The first traced
 * image of the run says on stderr where its dumps go. */
void runwatch_start(void);

/* A numbered dump was written whole at path: the watcher is told, if
 * there is one. Never blocks. */
void runwatch_dumped(const char *path);

#endif
