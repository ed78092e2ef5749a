/* The dump signal: installing heaptrace's handler, and knowing whether the
 * program has since taken the signal for itself. */
#ifndef HEAPTRACE_DUMPSIG_H
#define HEAPTRACE_DUMPSIG_H

enum dumpsig_state {
	DUMPSIG_NONE,  /* HEAPTRACE_SIGNAL=none */
	DUMPSIG_OWNED, /* heaptrace's handler is installed */
	DUMPSIG_LOST,  /* the program installed its own handler */
};

/* Installs the handler unless the program already handles the signal. */
void dumpsig_install(void);

enum dumpsig_state dumpsig_state(void);

/* Fork hook (lifecycle.h): the child owns the signal as its parent did. */
void dumpsig_postfork_child(void);

#endif
