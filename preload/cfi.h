/* How to step from a frame to its caller's on x86-64, as .eh_frame says,
 * for the frame walker of unwind.c. */
#ifndef HEAPTRACE_CFI_H
#define HEAPTRACE_CFI_H

#include <stdint.h>

enum cfa_base {
	CFA_UNKNOWN, /* no rule this walker can follow: ask libunwind */
	CFA_RSP,     /* CFA = rsp + offset */
	CFA_RBP,     /* CFA = rbp + offset */
	CFA_END,     /* the return address is undefined: the outermost frame */
};

/* The canonical frame address (CFA) is the caller's stack pointer; the
 * return address is at CFA - 8, and the caller's rbp is either where the
 * rule says it was saved or still in rbp. */
struct cfa_rule {
	enum cfa_base base;
	int32_t offset;
	int32_t rbp_offset; /* from the CFA */
	int rbp_saved;
};

/* Maps the cache of rules; 0 on success. */
int cfi_init(void);

/* The rule in force at pc, which is inside a function (a return address
 * minus one), read from the .eh_frame of the object holding pc the first
 * time and cached. Safe in any thread once cfi_init() has succeeded. */
struct cfa_rule cfi_rule_at(uintptr_t pc);

/* Code was unmapped (dlclose): the rules cached so far may be wrong for
 * whatever is mapped at their addresses next. */
void cfi_forget(void);

#endif
