/* libunwind is loaded with dlopen(RTLD_LOCAL) rather than linked: a
 * DT_NEEDED libunwind.so.8 would put its _Unwind_RaiseException and weak
 * backtrace into the host's global symbol scope and take over C++
 * exception handling. Privately loaded, only the few functions looked up
 * here are used, and the host's own unwinder stays in charge of throws.
 *
 * Frames inside libheaptrace.so and the unwinder are dropped from the top
 * of each capture by address range, so inlining decisions in the tracer's
 * own code never change what is recorded. */
#include "unwind.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <link.h>
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <string.h>

#include "config.h"
#include "forkguard.h"
#include "log.h"

#define STR2(x) #x
#define STR(x) STR2(x)

static int (*unw_bt)(void **, int);
static const char *name = "none";

#define OWN_RANGES 8
static struct {
	uintptr_t lo, hi;
} own[OWN_RANGES];
static int n_own;

struct find_arg {
	uintptr_t addr;
};

/* Adds the executable segments of the object that holds arg->addr. */
static int add_ranges(struct dl_phdr_info *info, size_t size, void *data)
{
	struct find_arg *arg = data;
	(void)size;
	int hit = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && arg->addr >= lo &&
		    arg->addr < lo + ph->p_memsz)
			hit = 1;
	}
	if (!hit)
		return 0;
	for (int i = 0; i < info->dlpi_phnum && n_own < OWN_RANGES; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
			continue;
		own[n_own].lo = info->dlpi_addr + ph->p_vaddr;
		own[n_own].hi = own[n_own].lo + ph->p_memsz;
		n_own++;
	}
	return 1;
}

static void add_own_object(const void *addr)
{
	struct find_arg arg = {(uintptr_t)addr};
	dl_iterate_phdr(add_ranges, &arg);
}

static int is_own(uintptr_t pc)
{
	for (int i = 0; i < n_own; i++)
		if (pc >= own[i].lo && pc < own[i].hi)
			return 1;
	return 0;
}

void unwind_init(void)
{
	add_own_object((const void *)unwind_init);
	void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	if (lib) {
		void *bt = dlsym(lib, "unw_backtrace");
		void *policy = dlsym(lib, STR(UNW_OBJ(set_caching_policy)));
		void *space = dlsym(lib, STR(UNW_OBJ(local_addr_space)));
		if (bt) {
			memcpy(&unw_bt, &bt, sizeof(bt));
			name = "libunwind";
			add_own_object(bt);
			if (policy && space) {
				int (*set)(unw_addr_space_t, unw_caching_policy_t);
				memcpy(&set, &policy, sizeof(policy));
				set(*(unw_addr_space_t *)space,
				    UNW_CACHE_PER_THREAD);
			}
			return;
		}
	}
	ht_log("cannot load libunwind.so.8 (%s); using glibc's backtrace() "
	       "for stacks, which is slower",
	       lib ? "no unw_backtrace" : "not installed");
	name = "glibc-backtrace";
	void *probe[1];
	backtrace(probe, 1); /* loads libgcc_s now, not inside malloc */
}

int unwind_capture(uintptr_t *frames, int max)
{
	void *buf[HT_MAX_FRAMES_LIMIT + 16];
	int want = max + 16, n;
	if (want > (int)(sizeof(buf) / sizeof(buf[0])))
		want = (int)(sizeof(buf) / sizeof(buf[0]));
	if (!forkguard_enter())
		return -1;
	n = unw_bt ? unw_bt(buf, want) : backtrace(buf, want);
	forkguard_leave();
	int skip = 0;
	while (skip < n && is_own((uintptr_t)buf[skip]))
		skip++;
	int out = 0;
	for (int i = skip; i < n && out < max; i++)
		frames[out++] = (uintptr_t)buf[i];
	return out;
}

const char *unwind_name(void)
{
	return name;
}
