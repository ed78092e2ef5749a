/* Names for code addresses from the symbol tables of the mapped files
 * themselves (.symtab, else .dynsym), and their build ids: what symbolz
 * and the ?debug=1 page name frames with. The rule is the tool's: a name
 * only for an address inside [value, value+size) of a function symbol. */
#ifndef HEAPTRACE_ELFSYM_H
#define HEAPTRACE_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

struct mapping;

/* The function holding addr, which m maps: 1 and its name and addr's
 * offset into it, or 0. The name stays valid until the next call. One
 * caller at a time (the profile lock). */
int elfsym_lookup(const struct mapping *m, uintptr_t addr, const char **name,
		  uint64_t *off);

/* The GNU build id of m's file in lowercase hex (at most 2*64 digits and
 * a NUL in buf), or "" when it has none. Same caller rule. */
void elfsym_build_id(const struct mapping *m, char *buf, size_t size);

#endif
