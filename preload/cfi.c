/* A reader of .eh_frame call frame information, enough for the rules that
 * compilers emit at call sites on x86-64: the CFA from rsp or rbp plus an
 * offset, the return address at CFA - 8, rbp saved at an offset from the
 * CFA. Everything else (expressions, signal frames, other registers as the
 * CFA) is reported as CFA_UNKNOWN and the caller falls back to libunwind.
 *
 * The object holding pc is found with _dl_find_object, which takes no
 * lock, and its FDE by binary search of .eh_frame_hdr's sorted table. */
#include "cfi.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <string.h>

#include "arena.h"

#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* Bounds of what a cached rule can hold (see pack()); a frame beyond
 * them, which no compiler makes, is CFA_UNKNOWN. */
#define CFA_OFFSET_LIMIT (1 << 28)
#define RBP_OFFSET_LIMIT (1 << 20)

enum { DW_EH_PE_omit = 0xff, DW_EH_PE_datarel_sdata4 = 0x3b };

/* A byte range being read; reads past end fail rather than run on. */
struct cursor {
	const uint8_t *p, *end;
	int bad;
};

static uint64_t get_bytes(struct cursor *c, unsigned n)
{
	uint64_t v = 0;
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = 1;
		return 0;
	}
	memcpy(&v, c->p, n); /* little-endian */
	c->p += n;
	return v;
}

static void skip(struct cursor *c, uint64_t n)
{
	if (n > (uint64_t)(c->end - c->p))
		c->bad = 1;
	else
		c->p += n;
}

static uint64_t get_uleb(struct cursor *c)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint8_t b = (uint8_t)get_bytes(c, 1);
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80) || c->bad)
			return v;
	}
	c->bad = 1;
	return 0;
}

static int64_t get_sleb(struct cursor *c)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64;) {
		uint8_t b = (uint8_t)get_bytes(c, 1);
		v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80) || c->bad) {
			if (shift < 64 && (b & 0x40))
				v |= ~(uint64_t)0 << shift;
			return (int64_t)v;
		}
	}
	c->bad = 1;
	return 0;
}

/* A pointer in one of the DW_EH_PE encodings; datarel is relative to
 * base. Only the value kinds and relations that appear in .eh_frame on
 * Linux are read; others mark the cursor bad. */
static uintptr_t get_encoded(struct cursor *c, uint8_t enc, uintptr_t base)
{
	if (enc == DW_EH_PE_omit)
		return 0;
	uintptr_t at = (uintptr_t)c->p, v;
	switch (enc & 0x0f) {
	case 0x00: v = (uintptr_t)get_bytes(c, 8); break;
	case 0x01: v = (uintptr_t)get_uleb(c); break;
	case 0x02: v = (uintptr_t)get_bytes(c, 2); break;
	case 0x03: v = (uintptr_t)get_bytes(c, 4); break;
	case 0x04: v = (uintptr_t)get_bytes(c, 8); break;
	case 0x09: v = (uintptr_t)get_sleb(c); break;
	case 0x0a: v = (uintptr_t)(int16_t)get_bytes(c, 2); break;
	case 0x0b: v = (uintptr_t)(int32_t)get_bytes(c, 4); break;
	case 0x0c: v = (uintptr_t)get_bytes(c, 8); break;
	default: c->bad = 1; return 0;
	}
	switch (enc & 0x70) {
	case 0x00: return v;
	case 0x10: return v + at;
	case 0x30: return v + base;
	default: c->bad = 1; return 0;
	}
}

/* The FDE covering pc, by binary search of the .eh_frame_hdr table. */
static const uint8_t *find_fde(const uint8_t *hdr, uintptr_t pc)
{
	struct cursor c = {hdr, hdr + 4, 0};
	if (get_bytes(&c, 1) != 1)
		return NULL;
	uint8_t ptr_enc = (uint8_t)get_bytes(&c, 1);
	uint8_t count_enc = (uint8_t)get_bytes(&c, 1);
	uint8_t table_enc = (uint8_t)get_bytes(&c, 1);
	if (table_enc != DW_EH_PE_datarel_sdata4)
		return NULL;
	c.end = hdr + 4 + 2 * 9; /* room for two encoded values */
	get_encoded(&c, ptr_enc, (uintptr_t)hdr);
	uintptr_t count = get_encoded(&c, count_enc, (uintptr_t)hdr);
	if (c.bad || count == 0)
		return NULL;
	const int32_t *table = (const int32_t *)(const void *)c.p;
	uintptr_t lo = 0, hi = count;
	while (hi - lo > 1) { /* the last entry starting at or before pc */
		uintptr_t mid = lo + (hi - lo) / 2;
		if ((uintptr_t)hdr + (uintptr_t)(intptr_t)table[2 * mid] <= pc)
			lo = mid;
		else
			hi = mid;
	}
	if ((uintptr_t)hdr + (uintptr_t)(intptr_t)table[2 * lo] > pc)
		return NULL;
	return hdr + table[2 * lo + 1];
}

/* What a register's value in the caller is. */
enum reg_how { REG_SAME, REG_UNDEFINED, REG_AT_CFA, REG_OTHER };

struct reg_rule {
	enum reg_how how;
	int64_t offset;
};

struct frame_state {
	uint64_t cfa_reg; /* UINT64_MAX: an expression */
	int64_t cfa_offset;
	struct reg_rule rbp, ra;
};

struct cie {
	uint64_t code_align;
	int64_t data_align;
	uint8_t fde_enc;
	int has_aug_data; /* 'z': FDEs carry augmentation data to skip */
	struct cursor program;
};

/* Remembered states (DW_CFA_remember_state) nest one deep in what
 * compilers emit; a deeper program is left to libunwind. The stack is
 * small because the rule is read on the program's stack, inside a sample
 * (each sample stays within 1 KiB of it). */
#define STATE_STACK 2

static struct reg_rule *tracked(struct frame_state *s, uint64_t reg)
{
	return reg == REG_RBP ? &s->rbp : reg == REG_RA ? &s->ra : NULL;
}

static void set_reg(struct frame_state *s, uint64_t reg, enum reg_how how,
		    int64_t offset)
{
	struct reg_rule *r = tracked(s, reg);
	if (r)
		*r = (struct reg_rule){how, offset};
}

static void restore_reg(struct frame_state *s, const struct frame_state *init,
			uint64_t reg)
{
	struct reg_rule *r = tracked(s, reg);
	if (r)
		*r = reg == REG_RBP ? init->rbp : init->ra;
}

/* Runs a CFA program up to and including the row for pc; 0 on success.
 * init is the state after the CIE's own program, for DW_CFA_restore. */
static int run_program(struct cursor *c, const struct cie *cie,
		       struct frame_state *s, const struct frame_state *init,
		       uintptr_t loc, uintptr_t pc)
{
	struct frame_state saved[STATE_STACK];
	unsigned depth = 0;
	while (c->p < c->end && !c->bad) {
		uint8_t op = (uint8_t)get_bytes(c, 1);
		uint64_t reg, delta = 0;
		int64_t off;
		if (op >> 6 == 2) { /* DW_CFA_offset */
			off = (int64_t)get_uleb(c) * cie->data_align;
			set_reg(s, op & 0x3f, REG_AT_CFA, off);
			continue;
		}
		if (op >> 6 == 3) { /* DW_CFA_restore */
			restore_reg(s, init, op & 0x3f);
			continue;
		}
		if (op >> 6 == 1) /* DW_CFA_advance_loc */
			delta = op & 0x3f;
		else switch (op) {
		case 0x00: /* nop */
			continue;
		case 0x01: /* set_loc */
			loc = get_encoded(c, cie->fde_enc, 0);
			if (loc > pc)
				return 0;
			continue;
		case 0x02: delta = get_bytes(c, 1); break;
		case 0x03: delta = get_bytes(c, 2); break;
		case 0x04: delta = get_bytes(c, 4); break;
		case 0x05: /* offset_extended */
			reg = get_uleb(c);
			off = (int64_t)get_uleb(c) * cie->data_align;
			set_reg(s, reg, REG_AT_CFA, off);
			continue;
		case 0x06: /* restore_extended */
			restore_reg(s, init, get_uleb(c));
			continue;
		case 0x07: /* undefined */
			set_reg(s, get_uleb(c), REG_UNDEFINED, 0);
			continue;
		case 0x08: /* same_value */
			set_reg(s, get_uleb(c), REG_SAME, 0);
			continue;
		case 0x09: /* register */
		case 0x14: /* val_offset */
		case 0x15: /* val_offset_sf: skipped alike, both LEB128 */
			reg = get_uleb(c);
			get_uleb(c);
			set_reg(s, reg, REG_OTHER, 0);
			continue;
		case 0x0a: /* remember_state */
			if (depth == STATE_STACK)
				return -1;
			saved[depth++] = *s;
			continue;
		case 0x0b: /* restore_state, the CFA rule included */
			if (depth == 0)
				return -1;
			*s = saved[--depth];
			continue;
		case 0x0c: /* def_cfa */
			s->cfa_reg = get_uleb(c);
			s->cfa_offset = (int64_t)get_uleb(c);
			continue;
		case 0x0d: /* def_cfa_register */
			s->cfa_reg = get_uleb(c);
			continue;
		case 0x0e: /* def_cfa_offset */
			s->cfa_offset = (int64_t)get_uleb(c);
			continue;
		case 0x0f: /* def_cfa_expression */
			s->cfa_reg = UINT64_MAX;
			skip(c, get_uleb(c));
			continue;
		case 0x10: /* expression */
		case 0x16: /* val_expression */
			reg = get_uleb(c);
			skip(c, get_uleb(c));
			set_reg(s, reg, REG_OTHER, 0);
			continue;
		case 0x11: /* offset_extended_sf */
			reg = get_uleb(c);
			off = get_sleb(c) * cie->data_align;
			set_reg(s, reg, REG_AT_CFA, off);
			continue;
		case 0x12: /* def_cfa_sf */
			s->cfa_reg = get_uleb(c);
			s->cfa_offset = get_sleb(c) * cie->data_align;
			continue;
		case 0x13: /* def_cfa_offset_sf */
			s->cfa_offset = get_sleb(c) * cie->data_align;
			continue;
		case 0x2e: /* GNU_args_size */
			get_uleb(c);
			continue;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = get_uleb(c);
			off = -(int64_t)get_uleb(c) * cie->data_align;
			set_reg(s, reg, REG_AT_CFA, off);
			continue;
		default:
			return -1;
		}
		loc += delta * cie->code_align;
		if (loc > pc)
			return 0;
	}
	return c->bad ? -1 : 0;
}

/* Reads the CIE at p: its factors, the FDE pointer encoding and its
 * initial program. 0 on success. */
static int read_cie(const uint8_t *p, struct cie *out)
{
	struct cursor c = {p, p + 8, 0};
	uint64_t len = get_bytes(&c, 4);
	if (len == 0 || len >= 0xfffffff0u || get_bytes(&c, 4) != 0)
		return -1;
	c.end = p + 4 + len;
	uint8_t version = (uint8_t)get_bytes(&c, 1);
	const char *aug = (const char *)c.p;
	size_t aug_len = strnlen(aug, (size_t)(c.end - c.p));
	skip(&c, aug_len + 1); /* fails if the string has no end */
	out->code_align = get_uleb(&c);
	out->data_align = get_sleb(&c);
	uint64_t ra = version == 1 ? get_bytes(&c, 1) : get_uleb(&c);
	out->fde_enc = 0; /* absptr */
	out->has_aug_data = aug[0] == 'z';
	if ((version != 1 && version != 3) || ra != REG_RA || c.bad)
		return -1;
	if (aug[0] == 'z') {
		uint64_t data_len = get_uleb(&c);
		struct cursor data = c;
		skip(&data, data_len);
		if (data.bad)
			return -1;
		for (size_t i = 1; i < aug_len && !c.bad; i++) {
			if (aug[i] == 'R')
				out->fde_enc = (uint8_t)get_bytes(&c, 1);
			else if (aug[i] == 'P') /* skipped, indirect or not */
				get_encoded(&c, get_bytes(&c, 1) & 0x7f, 0);
			else if (aug[i] == 'L')
				get_bytes(&c, 1);
			else /* 'S' (a signal frame) or one we do not know */
				return -1;
		}
		c.p = data.p; /* past the data, whatever it held */
	} else if (aug[0]) {
		return -1;
	}
	if (c.bad || c.p > c.end)
		return -1;
	out->program = c;
	return 0;
}

static struct cfa_rule rule_of(const struct frame_state *s)
{
	struct cfa_rule r = {CFA_UNKNOWN, 0, 0, 0};
	if (s->ra.how == REG_UNDEFINED) {
		r.base = CFA_END;
		return r;
	}
	if (s->ra.how != REG_AT_CFA || s->ra.offset != -8)
		return r;
	if (s->rbp.how == REG_OTHER || s->cfa_offset <= 0 ||
	    s->cfa_offset >= CFA_OFFSET_LIMIT ||
	    (s->cfa_reg != REG_RSP && s->cfa_reg != REG_RBP))
		return r;
	if (s->rbp.how == REG_AT_CFA) {
		if (s->rbp.offset >= 0 || s->rbp.offset <= -RBP_OFFSET_LIMIT)
			return r;
		r.rbp_saved = 1;
		r.rbp_offset = (int32_t)s->rbp.offset;
	}
	r.base = s->cfa_reg == REG_RSP ? CFA_RSP : CFA_RBP;
	r.offset = (int32_t)s->cfa_offset;
	return r;
}

static struct cfa_rule read_rule(uintptr_t pc)
{
	static const struct cfa_rule unknown = {CFA_UNKNOWN, 0, 0, 0};
	struct dl_find_object obj;
	if (_dl_find_object((void *)pc, &obj) != 0 || !obj.dlfo_eh_frame)
		return unknown;
	const uint8_t *fde = find_fde(obj.dlfo_eh_frame, pc);
	if (!fde)
		return unknown;
	struct cursor c = {fde, fde + 8, 0};
	uint64_t len = get_bytes(&c, 4);
	const uint8_t *id_at = c.p;
	uint64_t cie_off = get_bytes(&c, 4);
	if (len == 0 || len >= 0xfffffff0u || cie_off == 0 || c.bad)
		return unknown;
	c.end = fde + 4 + len;
	struct cie cie;
	if (read_cie(id_at - cie_off, &cie))
		return unknown;
	uintptr_t begin = get_encoded(&c, cie.fde_enc, 0);
	uintptr_t range = get_encoded(&c, cie.fde_enc & 0x0f, 0);
	if (cie.has_aug_data)
		skip(&c, get_uleb(&c));
	if (c.bad || pc < begin || pc - begin >= range)
		return unknown;
	/* x86-64's rule on entry, then the CIE's and the FDE's programs. */
	struct frame_state s = {REG_RSP, 8, {REG_SAME, 0}, {REG_AT_CFA, -8}};
	struct cursor prog = cie.program;
	if (run_program(&prog, &cie, &s, &s, 0, UINTPTR_MAX))
		return unknown;
	struct frame_state init = s;
	if (run_program(&c, &cie, &s, &init, begin, pc))
		return unknown;
	return rule_of(&s);
}

/* The rules already read, by pc: reading one takes a binary search and a
 * walk of the FDE's program, a few hundred instructions, where the walker
 * wants a few. Slots are claimed by CAS on the pc and never given back;
 * the rule is one word, so a reader sees all of it or nothing (0). A rule
 * carries the generation of the code it was read from: dlclose() moves
 * the generation on, and older rules read as misses, to be read again.
 * A full neighbourhood leaves the rule uncached, read every time.
 *
 * The return addresses of one 4 KiB page of code share one page of the
 * cache (a block of CACHE_BLOCK slots, picked by hashing the code page),
 * so the cache touches about as many pages as the program has pages of
 * code on its sampled stacks: tens for most programs, all 1 MiB of it for
 * a compiler with 16,000 distinct return addresses. */
#define CACHE_BITS 16
#define CACHE_SLOTS (1u << CACHE_BITS)
#define CACHE_BLOCK_BITS 8
#define CACHE_BLOCK (1u << CACHE_BLOCK_BITS)
#define CACHE_PROBES 16
#define GENERATION_BITS 13
#define GEN_SHIFT (64 - GENERATION_BITS)

struct cache_slot {
	_Atomic uintptr_t pc;
	_Atomic uint64_t rule;
};

static struct cache_slot *cache;
static _Atomic unsigned generation = 1;

/* base 2 bits, rbp_saved 1, -rbp_offset 20, offset 28, generation 13. */
static uint64_t pack(struct cfa_rule r, unsigned gen)
{
	return (uint64_t)r.base | (uint64_t)r.rbp_saved << 2 |
	       (uint64_t)(uint32_t)-r.rbp_offset << 3 |
	       (uint64_t)(uint32_t)r.offset << 23 | (uint64_t)gen << GEN_SHIFT;
}

static struct cfa_rule unpack(uint64_t v)
{
	return (struct cfa_rule){
	    .base = (enum cfa_base)(v & 3),
	    .rbp_saved = (int)(v >> 2 & 1),
	    .rbp_offset = -(int32_t)(v >> 3 & (RBP_OFFSET_LIMIT - 1)),
	    .offset = (int32_t)(v >> 23 & (CFA_OFFSET_LIMIT - 1)),
	};
}

int cfi_init(void)
{
	cache = arena_map(CACHE_SLOTS * sizeof(*cache));
	return cache ? 0 : -1;
}

void cfi_forget(void)
{
	unsigned g = atomic_load(&generation), next;
	do {
		next = (g + 1) & ((1u << GENERATION_BITS) - 1);
		if (!next)
			next = 1; /* 0 would make a rule look unwritten */
	} while (!atomic_compare_exchange_weak(&generation, &g, next));
}

struct cfa_rule cfi_rule_at(uintptr_t pc)
{
	unsigned gen = atomic_load_explicit(&generation, memory_order_acquire);
	uint64_t page = (uint64_t)(pc >> 12) * 0x9e3779b97f4a7c15ULL;
	struct cache_slot *block =
	    &cache[(page >> (64 - CACHE_BITS + CACHE_BLOCK_BITS)) * CACHE_BLOCK];
	unsigned home = (unsigned)(pc >> 4); /* 16-byte granule in the page */
	struct cache_slot *free_slot = NULL;
	for (unsigned i = 0; i < CACHE_PROBES; i++) {
		struct cache_slot *s = &block[(home + i) % CACHE_BLOCK];
		uintptr_t k = atomic_load_explicit(&s->pc,
						   memory_order_relaxed);
		if (k == pc) {
			uint64_t v = atomic_load_explicit(&s->rule,
							  memory_order_relaxed);
			if (v >> GEN_SHIFT == gen)
				return unpack(v);
			free_slot = s; /* stale or still being written */
			break;
		}
		if (k == 0) {
			if (atomic_compare_exchange_strong(&s->pc, &k, pc) ||
			    k == pc)
				free_slot = s;
			break;
		}
	}
	struct cfa_rule r = read_rule(pc);
	if (free_slot)
		atomic_store_explicit(&free_slot->rule, pack(r, gen),
				      memory_order_relaxed);
	return r;
}
