/* The configuration, read once from HEAPTRACE_* environment variables. */
#ifndef HEAPTRACE_CONFIG_H
#define HEAPTRACE_CONFIG_H

#include <stdint.h>
#include <sys/socket.h>

#define HT_MAX_FRAMES_LIMIT 256
#define HT_MAX_AGE_BOUNDS 7

struct ht_config {
	uint64_t rate;          /* mean bytes between samples; 1 = all */
	uint64_t seed;          /* the sampler's: HEAPTRACE_SEED, else the clock's */
	uint64_t interval_ms;   /* periodic dumps; 0 = off */
	char dir[4096];         /* absolute dump directory */
	char fallback_base[4096]; /* $TMPDIR or /tmp: see dumpdir.h */
	unsigned dump_mode;     /* dump files' mode before the umask */
	int compress;           /* gzip dump files (.heap.gz) */
	int signal;             /* dump signal; 0 = none */
	unsigned max_frames;    /* stack depth cap */
	unsigned keep;          /* dump files kept per process; 0 = all */
	int on_exit;            /* dump at exit */
	int follow_exec;        /* exec'd children stay traced */
	int libunwind_only;     /* HEAPTRACE_UNWIND=libunwind */
	uint32_t stack_capacity; /* distinct stacks (power of two slots) */
	uint32_t live_capacity;  /* live sampled allocations (slots) */
	unsigned n_age_bounds;   /* age buckets are n_age_bounds + 1 */
	uint32_t age_bounds_s[HT_MAX_AGE_BOUNDS];
	/* Dumps by amount (triggers.c). */
	unsigned peak_step_pct;   /* a new peak: this % above the last... */
	uint64_t peak_step_bytes; /* ...and at least this; both 0 = off */
	uint64_t rss_limit_bytes; /* RSS that triggers a dump; 0 = off */
	unsigned rss_limit_permille; /* or this share of memory.max; 0 = off */
	uint64_t alloc_step;      /* bytes allocated between dumps; 0 = off */
	int mmap;                 /* anonymous mmaps by stack (mmaps.c) */
	int http;                /* HEAPTRACE_HTTP is set and well-formed */
	int http_public;         /* its address is not a loopback one */
	int http_inherited;      /* from a traced ancestor: a port found
				  * taken is not said (exec_env.c) */
	struct sockaddr_storage http_addr;
	socklen_t http_addr_len;
	char http_token_file[4096]; /* HEAPTRACE_HTTP_TOKEN_FILE, "" = none */
	int run_pid;             /* HEAPTRACE_RUN's: 0 = not under heaptrace run */
	int run_announce;        /* its `+`: say where dumps go (runwatch.c) */
};

extern struct ht_config ht_config;


/* Reads the environment into ht_config; each malformed value gets one line
 * on stderr naming the variable, the value and the default used. */
void config_load(void);

#endif
