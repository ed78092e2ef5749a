/* Reads HEAPTRACE_* variables. A malformed value must never stop the host
 * program: it is reported once, on one line, and the default is used. */
#include "config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct ht_config ht_config;

/* Parses a whole decimal number in [min, max]; 0 on success. */
static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Parses seconds with up to three decimals ("60", "0.5") into ms. */
static int parse_seconds_ms(const char *s, uint64_t *ms)
{
	char whole[32];
	const char *dot = strchr(s, '.');
	size_t n = dot ? (size_t)(dot - s) : strlen(s);
	uint64_t w, frac = 0;
	if (n == 0 || n >= sizeof(whole))
		return -1;
	memcpy(whole, s, n);
	whole[n] = '\0';
	if (parse_uint(whole, 0, 86400 * 365, &w))
		return -1;
	if (dot) {
		const char *f = dot + 1;
		size_t digits = strlen(f);
		if (digits == 0 || digits > 3 || parse_uint(f, 0, 999, &frac))
			return -1;
		for (; digits < 3; digits++)
			frac *= 10;
	}
	*ms = w * 1000 + frac;
	return 0;
}

static int parse_signal(const char *s, int *sig)
{
	uint64_t n;
	if (!strcmp(s, "none") || !strcmp(s, "0")) {
		*sig = 0;
		return 0;
	}
	if (!strncmp(s, "SIG", 3))
		s += 3;
	if (!strcmp(s, "USR1"))
		*sig = SIGUSR1;
	else if (!strcmp(s, "USR2"))
		*sig = SIGUSR2;
	else if (!strcmp(s, "PROF"))
		*sig = SIGPROF;
	else if (!strcmp(s, "URG"))
		*sig = SIGURG;
	else if (!strcmp(s, "WINCH"))
		*sig = SIGWINCH;
	else if (!strncmp(s, "RTMIN+", 6) && !parse_uint(s + 6, 0, 30, &n) &&
		 SIGRTMIN + (int)n <= SIGRTMAX)
		*sig = SIGRTMIN + (int)n;
	else if (!parse_uint(s, 1, 64, &n) && n != SIGKILL && n != SIGSTOP &&
		 n != SIGSEGV && n != SIGBUS && n != SIGFPE && n != SIGILL)
		*sig = (int)n;
	else
		return -1;
	return 0;
}

/* "60,600,3600": increasing whole seconds, at most HT_MAX_AGE_BOUNDS. */
static int parse_ages(const char *s, struct ht_config *c)
{
	uint32_t bounds[HT_MAX_AGE_BOUNDS];
	unsigned n = 0;
	while (*s) {
		char num[16];
		size_t len = strcspn(s, ",");
		uint64_t v;
		if (n == HT_MAX_AGE_BOUNDS || len == 0 || len >= sizeof(num))
			return -1;
		memcpy(num, s, len);
		num[len] = '\0';
		if (parse_uint(num, 1, 100u * 365 * 86400, &v) ||
		    (n && v <= bounds[n - 1]))
			return -1;
		bounds[n++] = (uint32_t)v;
		s += len;
		if (*s == ',' && *++s == '\0')
			return -1;
	}
	if (n == 0)
		return -1;
	memcpy(c->age_bounds_s, bounds, sizeof(bounds));
	c->n_age_bounds = n;
	return 0;
}

/* A number of bytes with an optional binary suffix: "512M", "16MiB", "2g",
 * "4096". */
static int parse_size(const char *s, uint64_t *out)
{
	char num[24];
	size_t n = strspn(s, "0123456789");
	uint64_t v, shift = 0;
	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (parse_uint(num, 0, UINT64_MAX, &v))
		return -1;
	const char *u = s + n;
	if (*u) {
		const char *units = "KMGT";
		const char *at = strchr(units, *u & ~0x20);
		if (!at)
			return -1;
		shift = 10 * (uint64_t)(at - units + 1);
		u++;
		if (!strcmp(u, "iB") || !strcmp(u, "B") || !strcmp(u, "b"))
			u += strlen(u);
		if (*u || v > UINT64_MAX >> shift)
			return -1;
	}
	*out = v << shift;
	return 0;
}

/* HEAPTRACE_PEAK_STEP: "N%" (of the last peak, at least 16 MiB), a size,
 * or 0 (off). */
static int parse_peak_step(const char *s, struct ht_config *c)
{
	size_t n = strlen(s);
	uint64_t v;
	if (n > 1 && s[n - 1] == '%') {
		char num[8];
		if (n - 1 >= sizeof(num))
			return -1;
		memcpy(num, s, n - 1);
		num[n - 1] = '\0';
		if (parse_uint(num, 1, 1000, &v))
			return -1;
		c->peak_step_pct = (unsigned)v;
		c->peak_step_bytes = 16ULL << 20;
		return 0;
	}
	if (parse_size(s, &v))
		return -1;
	c->peak_step_pct = 0;
	c->peak_step_bytes = v;
	return 0;
}

/* HEAPTRACE_RSS_LIMIT: a size (RSS), or a fraction "0.8" of the cgroup's
 * memory.max (its memory.current is compared), or 0 (off). */
static int parse_rss_limit(const char *s, struct ht_config *c)
{
	if (s[0] == '0' && s[1] == '.') {
		uint64_t frac;
		size_t digits = strlen(s + 2);
		if (digits == 0 || digits > 3 || parse_uint(s + 2, 0, 999, &frac))
			return -1;
		for (; digits < 3; digits++)
			frac *= 10;
		if (frac == 0)
			return -1;
		c->rss_limit_permille = (unsigned)frac;
		c->rss_limit_bytes = 0;
		return 0;
	}
	c->rss_limit_permille = 0;
	return parse_size(s, &c->rss_limit_bytes);
}

/* HEAPTRACE_HTTP: "PORT", ":PORT", "localhost:PORT", "A.B.C.D:PORT" or
 * "[V6]:PORT". No name lookup: getaddrinfo allocates from the program's
 * heap. Loopback unless an address is named. */
static int parse_http(const char *s, struct ht_config *c)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	const char *port_text = colon ? colon + 1 : s;
	size_t host_len = colon ? (size_t)(colon - s) : 0;
	uint64_t port;
	if (parse_uint(port_text, 0, 65535, &port) || host_len >= sizeof(host))
		return -1;
	memcpy(host, s, host_len);
	host[host_len] = '\0';
	memset(&c->http_addr, 0, sizeof(c->http_addr));
	if (host_len > 2 && host[0] == '[' && host[host_len - 1] == ']') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&c->http_addr;
		host[host_len - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		c->http_addr_len = sizeof(*a);
		c->http_public = !IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)&c->http_addr;
	if (!host_len || !strcmp(host, "localhost"))
		ht_snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
		return -1;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	c->http_addr_len = sizeof(*a);
	c->http_public = (ntohl(a->sin_addr.s_addr) >> 24) != 127;
	return 0;
}

/* One line, whole: an overlong value is shortened, not the message. */
static void bad(const char *var, const char *value, const char *why,
		const char *dflt)
{
	char shown[80];
	ht_snprintf(shown, sizeof(shown), "%s", value);
	if (strlen(value) >= sizeof(shown))
		memcpy(shown + sizeof(shown) - 10, "... (cut)", 10);
	ht_log("%s='%s' %s; using the default %s", var, shown, why, dflt);
}

static void load_uint(const char *var, uint64_t min, uint64_t max,
		      uint64_t *out, const char *why, const char *dflt)
{
	const char *v = getenv(var);
	uint64_t n;
	if (!v)
		return;
	if (parse_uint(v, min, max, &n))
		bad(var, v, why, dflt);
	else
		*out = n;
}

/* An octal file mode with owner read and write and no execute or special
 * bits ("0600" to "0666"). */
static int parse_mode(const char *s, unsigned *mode)
{
	unsigned v = 0;
	if (!*s || strlen(s) > 4)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -1;
		v = v * 8 + (unsigned)(*s - '0');
	}
	if ((v & 0600) != 0600 || (v & ~0666u))
		return -1;
	*mode = v;
	return 0;
}

/* The default dump directory: the working directory when it is writable,
 * else /tmp. Resolved now so a later chdir does not move the dumps. */
static void default_dir(char *dir, size_t size)
{
	if (getcwd(dir, size) && access(dir, W_OK | X_OK) == 0)
		return;
	ht_snprintf(dir, size, "/tmp");
}

void config_load(void)
{
	struct ht_config *c = &ht_config;
	uint64_t v;

	c->rate = 524288;
	c->interval_ms = 60000;
	c->signal = SIGUSR1;
	c->max_frames = 64;
	c->keep = 64;
	c->on_exit = 1;
	c->n_age_bounds = 3;
	c->age_bounds_s[0] = 60;
	c->age_bounds_s[1] = 600;
	c->age_bounds_s[2] = 3600;

	load_uint("HEAPTRACE_RATE", 1, 1ULL << 40, &c->rate,
		  "is not a whole number of bytes from 1 to 2^40", "524288");

	/* Without HEAPTRACE_SEED, a seed from the clock; either way it is in
	 * every dump, so any sampled run can be replayed. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c->seed = ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) ^
		  ((uint64_t)getpid() << 40);
	load_uint("HEAPTRACE_SEED", 0, UINT64_MAX / 2, &c->seed,
		  "is not a whole number from 0 to 2^63", "(from the clock)");

	const char *s = getenv("HEAPTRACE_INTERVAL");
	if (s && parse_seconds_ms(s, &c->interval_ms))
		bad("HEAPTRACE_INTERVAL", s,
		    "is not a number of seconds (0 = off, up to 3 decimals)",
		    "60");

	s = getenv("HEAPTRACE_SIGNAL");
	if (s && parse_signal(s, &c->signal))
		bad("HEAPTRACE_SIGNAL", s,
		    "is not USR1, USR2, RTMIN+N, a signal number or none", "USR1");

	v = c->max_frames;
	load_uint("HEAPTRACE_MAX_FRAMES", 1, HT_MAX_FRAMES_LIMIT, &v,
		  "is not a whole number from 1 to 256", "64");
	c->max_frames = (unsigned)v;

	v = c->keep;
	load_uint("HEAPTRACE_KEEP", 0, 1000000, &v,
		  "is not a whole number (0 = keep all)", "64");
	c->keep = (unsigned)v;

	v = (uint64_t)c->on_exit;
	load_uint("HEAPTRACE_ON_EXIT", 0, 1, &v, "is not 0 or 1", "1");
	c->on_exit = (int)v;

	v = 1;
	load_uint("HEAPTRACE_FOLLOW_EXEC", 0, 1, &v, "is not 0 or 1", "1");
	c->follow_exec = (int)v;

	s = getenv("HEAPTRACE_UNWIND");
	if (s && strcmp(s, "libunwind") == 0)
		c->libunwind_only = 1;
	else if (s && strcmp(s, "cfi") != 0)
		bad("HEAPTRACE_UNWIND", s, "is not cfi or libunwind", "cfi");
	s = getenv("HEAPTRACE_AGES");
	if (s && parse_ages(s, c))
		bad("HEAPTRACE_AGES", s,
		    "is not 1 to 7 increasing whole seconds separated by commas",
		    "60,600,3600");

	/* Capacities: rate 1 records every live block, so it gets more room. */
	uint64_t stacks = 1 << 21, live = c->rate == 1 ? 1 << 22 : 1 << 18;
	load_uint("HEAPTRACE_STACKS", 16, 1 << 26, &stacks,
		  "is not a whole number from 16 to 67108864", "2097152");
	load_uint("HEAPTRACE_LIVE", 16, 1 << 28, &live,
		  "is not a whole number from 16 to 268435456",
		  c->rate == 1 ? "4194304" : "262144");
	c->stack_capacity = (uint32_t)stacks;
	c->live_capacity = (uint32_t)live;

	c->peak_step_pct = 10;
	c->peak_step_bytes = 16ULL << 20;
	s = getenv("HEAPTRACE_PEAK_STEP");
	if (s && parse_peak_step(s, c)) {
		bad("HEAPTRACE_PEAK_STEP", s,
		    "is not a percentage (10%), a size (64M) or 0 (off)", "10%");
		c->peak_step_pct = 10;
		c->peak_step_bytes = 16ULL << 20;
	}
	s = getenv("HEAPTRACE_RSS_LIMIT");
	if (s && parse_rss_limit(s, c)) {
		bad("HEAPTRACE_RSS_LIMIT", s,
		    "is not a size (512M), a fraction of the cgroup's memory.max "
		    "(0.8) or 0 (off)", "0 (off)");
		c->rss_limit_bytes = 0;
		c->rss_limit_permille = 0;
	}
	v = 1;
	load_uint("HEAPTRACE_MMAP", 0, 1, &v, "is not 0 or 1", "1");
	c->mmap = (int)v;

	s = getenv("HEAPTRACE_ALLOC_STEP");
	if (s && parse_size(s, &c->alloc_step)) {
		bad("HEAPTRACE_ALLOC_STEP", s, "is not a size (1G) or 0 (off)",
		    "0 (off)");
		c->alloc_step = 0;
	}

	c->dump_mode = 0600;
	s = getenv("HEAPTRACE_DUMP_MODE");
	if (s && parse_mode(s, &c->dump_mode))
		bad("HEAPTRACE_DUMP_MODE", s,
		    "is not an octal mode from 0600 to 0666 with owner read and "
		    "write", "0600");

	s = getenv("HEAPTRACE_COMPRESS");
	if (s && (!strcmp(s, "1") || !strcmp(s, "gzip")))
		c->compress = 1;
	else if (s && strcmp(s, "0") && strcmp(s, "none"))
		bad("HEAPTRACE_COMPRESS", s, "is not 1, gzip, 0 or none", "0");

	s = getenv("HEAPTRACE_HTTP");
	if (s && *s) {
		if (parse_http(s, c))
			bad("HEAPTRACE_HTTP", s,
			    "is not PORT, ADDR:PORT or [ADDR]:PORT with a "
			    "numeric ADDR or localhost",
			    "(none): HTTP is not served");
		else
			c->http = 1;
	}
	s = getenv("HEAPTRACE_HTTP_TOKEN_FILE");
	if (s && *s)
		ht_snprintf(c->http_token_file, sizeof(c->http_token_file),
			    "%s", s);

	s = getenv("HEAPTRACE_RUN");
	if (s) {
		uint64_t pid;
		int announce = *s == '+';
		if (parse_uint(s + announce, 1, 1 << 22 /* PID_MAX_LIMIT */, &pid))
			bad("HEAPTRACE_RUN", s, "is not [+]PID (heaptrace run sets it)",
			    "(none): the run's watcher is not told of dumps");
		else {
			c->run_pid = (int)pid;
			c->run_announce = announce;
		}
	}

	/* Read now: the program may change its environment later, and getenv
	 * then is no longer safe from the dump thread. */
	s = getenv("TMPDIR");
	if (s && *s && (s[0] != '/' || strlen(s) >= sizeof(c->fallback_base) - 128)) {
		bad("TMPDIR", s, "is not an absolute path of a usable length",
		    "/tmp for heaptrace's private fallback directory");
		s = NULL;
	}
	ht_snprintf(c->fallback_base, sizeof(c->fallback_base), "%s",
		    s && *s ? s : "/tmp");

	s = getenv("HEAPTRACE_DIR");
	if (s && *s == '\0') {
		bad("HEAPTRACE_DIR", s, "is empty", "(the working directory)");
		s = NULL;
	}
	if (s && strlen(s) >= sizeof(c->dir) - 64) {
		bad("HEAPTRACE_DIR", s, "is too long", "(the working directory)");
		s = NULL;
	}
	if (!s) {
		default_dir(c->dir, sizeof(c->dir));
	} else if (s[0] == '/') {
		ht_snprintf(c->dir, sizeof(c->dir), "%s", s);
	} else {
		char cwd[3072];
		if (!getcwd(cwd, sizeof(cwd)))
			cwd[0] = '\0';
		ht_snprintf(c->dir, sizeof(c->dir), "%s/%s", cwd, s);
	}
}
