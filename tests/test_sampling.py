"""Sampled numbers against the truth, and sampled runs replayed by their seed.

tests/progs/sites.c allocates from six sites whose sizes span the range
(16 B to 8 MiB), with live and freed parts. At the default rate each of its
allocations of s bytes is sampled independently (the sample points form a
Poisson process over the bytes allocated, and the blocks are disjoint
stretches of it) with p = 1 - exp(-s/rate). A site of N blocks then yields
K ~ Binomial(N, p) samples, and its estimate K/p has the relative spread
sqrt((1-p)/(N p)) for objects and bytes alike; each of the four sample
types (inuse/alloc x objects/space) is one such estimate per site, N being
the site's live blocks or all its blocks.

Each run (its seed fixed, HEAPTRACE_SEED=1, 2, ...) is checked per site and
type within MAX_SIGMA of that spread, as the readers scale the dump's lines
and as heaptrace's own `#` totals say. Over all runs, the inverse-variance
pooled relative error of each type must be within POOL_SIGMA of its spread;
the number of runs is derived so that a 2% bias in any type fails the pooled
check with 99% probability. The dump's `#` totals are held to the truth the
same way, by the mean of their relative errors over the runs. A failure
names the seed to replay.
"""
import math
from concurrent.futures import ThreadPoolExecutor

import lib

RATE = 524288
# name: (blocks, bytes each, blocks freed) as tests/progs/sites.c makes them
SITES = {
    "site_16": (1000000, 16, 250000),
    "site_4k": (10000, 4096, 2500),
    "site_1m": (100, 1 << 20, 25),
    "site_64k_freed": (200, 64 << 10, 200),
    "site_8m": (5, 8 << 20, 1),
    "site_100": (100000, 100, 25000),
}
TYPES = ("inuse_objects", "inuse_space", "alloc_objects", "alloc_space")
MAX_SIGMA = 5.0      # per run, site and type
POOL_SIGMA = 3.5     # the pooled error over all runs, per type
BIAS = 0.02          # the smallest bias the pooled check must catch ...
POWER_SIGMA = 2.33   # ... with 99% probability (one-sided normal quantile)
CERTAIN = 0.99       # sites sampled with p above this are not pooled


def p_of(size):
    return -math.expm1(-size / RATE)


def truth(site, kind):
    n, size, freed = SITES[site]
    objs = n - freed if kind.startswith("inuse") else n
    return objs * size if kind.endswith("space") else objs


def rel_var(site, kind):
    """The variance of a site's relative error K/(N p) - 1 in one run."""
    n, size, freed = SITES[site]
    objs = n - freed if kind.startswith("inuse") else n
    p = p_of(size)
    return (1 - p) / (objs * p) if objs else None


def pooled_runs():
    """Runs so that (POOL_SIGMA + POWER_SIGMA) pooled spreads fit in BIAS,
    for the type with the least information per run."""
    need = 0
    for kind in TYPES:
        info = sum(1 / rel_var(s, kind) for s in SITES
                   if rel_var(s, kind) and p_of(SITES[s][1]) < CERTAIN)
        need = max(need, math.ceil(((POOL_SIGMA + POWER_SIGMA) / BIAS) ** 2 / info))
    return need


def site_of(mean):
    """The site whose block size a line's mean size is near: exactly that
    size when the line's count is its number of samples, as it is for a
    site of one size; the sizes are far apart, so a wrong weight that
    rounds the count differently still finds its site."""
    for site, (_, size, _) in SITES.items():
        if size / 1.5 < mean < size * 1.5:
            return site
    return None


def estimates(dump):
    """{site: {type: value}} as a reader scales the dump's lines, and the
    dump's own `#` totals. A line is matched to its site by its mean size."""
    out = {site: dict.fromkeys(TYPES, 0.0) for site in SITES}
    for c, b, ac, ab, _ in lib.dump_samples(dump):
        for kind_objs, kind_space, cc, bb in (("inuse_objects", "inuse_space", c, b),
                                              ("alloc_objects", "alloc_space", ac, ab)):
            if not cc:
                continue
            site = site_of(bb / cc)
            if not site:
                raise AssertionError(f"a line of mean size {bb / cc} in {dump}: "
                                     "sites.c allocates nothing else")
            scale = 1 / p_of(bb / cc)
            acc = out[site]
            acc[kind_objs] += cc * scale
            acc[kind_space] += bb * scale
    meta = lib.dump_meta(dump)
    own = {kind: float(meta[key]) for kind, key in lib.OWN_TOTALS.items()}
    return out, own


def one_run(seed):
    d = lib.tmpdir("ht-sites-")
    _, dumps = lib.run_traced([lib.prog("sites")], dump_dir=d, seed=seed)
    if len(dumps) != 1:
        raise AssertionError(f"seed {seed}: dumps {dumps}")
    if lib.dump_meta(dumps[0]).get("seed") != str(seed):
        raise AssertionError(f"seed {seed}: the dump says seed {lib.dump_meta(dumps[0]).get('seed')}")
    # test_zz_readers.py holds the peer readers to the truth of this dump
    lib.TRUTH[dumps[0]] = {kind: (sum(truth(s, kind) for s in SITES), MAX_SIGMA * total_sd(kind))
                           for kind in TYPES}
    return seed, dumps[0], estimates(dumps[0])


def total_sd(kind):
    """The spread of a type's total over the sites in one run."""
    return math.sqrt(sum(truth(s, kind) ** 2 * rel_var(s, kind) for s in SITES
                         if rel_var(s, kind)))


def check_run(seed, dump, sites, own):
    """Per site and type within MAX_SIGMA of the binomial spread; the `#`
    totals within MAX_SIGMA of the spread of their sum."""
    where = f"seed {seed} (replay: HEAPTRACE_SEED={seed} {lib.prog('sites')}; dump {dump})"
    for kind in TYPES:
        total_var = 0.0
        for site in SITES:
            want = truth(site, kind)
            got = sites[site][kind]
            var = rel_var(site, kind)
            if var is None:
                if got:
                    raise AssertionError(f"{where}: {site} {kind} {got:.0f}, none is live")
                continue
            total_var += (want ** 2) * var
            # + 1e-6: the file's whole numbers and the readers' floating point
            allowed = MAX_SIGMA * want * math.sqrt(var) + 1e-6 * want
            if abs(got - want) > allowed:
                raise AssertionError(
                    f"{where}: {site} {kind} read as {got:.0f}, truth {want} "
                    f"(allowed +-{allowed:.0f}, {MAX_SIGMA} binomial sd)")
        want = sum(truth(s, kind) for s in SITES)
        allowed = MAX_SIGMA * math.sqrt(total_var) + 1e-6 * want
        if abs(own[kind] - want) > allowed:
            raise AssertionError(
                f"{where}: the dump's # {lib.OWN_TOTALS[kind]} is {own[kind]:.0f}, "
                f"truth {want} (allowed +-{allowed:.0f})")


def test_sampled_estimates_match_truth():
    runs = pooled_runs()
    seeds = range(1, runs + 1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one_run, seeds))
    pooled = {kind: [0.0, 0.0] for kind in TYPES}  # sum of err/var, of 1/var
    own_err = dict.fromkeys(TYPES, 0.0)  # the `#` totals' relative errors, summed
    for seed, dump, (sites, own) in results:
        check_run(seed, dump, sites, own)
        for kind in TYPES:
            own_err[kind] += own[kind] / sum(truth(s, kind) for s in SITES) - 1
        for kind in TYPES:
            for site in SITES:
                var = rel_var(site, kind)
                if var is None or p_of(SITES[site][1]) >= CERTAIN:
                    continue
                err = sites[site][kind] / truth(site, kind) - 1
                pooled[kind][0] += err / var
                pooled[kind][1] += 1 / var
    report = []
    for kind, (num, info) in pooled.items():
        bias, sd = num / info, 1 / math.sqrt(info)
        report.append(f"{kind} {bias:+.4f} (sd {sd:.4f})")
        if abs(bias) > POOL_SIGMA * sd:
            raise AssertionError(
                f"{kind} is biased by {bias:+.2%} over seeds 1 to {runs} (allowed "
                f"+-{POOL_SIGMA * sd:.2%}, {POOL_SIGMA} sd of the pooled estimate)")
        # The `#` total of a type, its spread over the runs that of the sum
        sd = total_sd(kind) / sum(truth(s, kind) for s in SITES) / math.sqrt(runs)
        mean = own_err[kind] / runs
        if abs(mean) > POOL_SIGMA * sd:
            raise AssertionError(
                f"the dumps' # {lib.OWN_TOTALS[kind]} is off by {mean:+.2%} on average over "
                f"seeds 1 to {runs} (allowed +-{POOL_SIGMA * sd:.2%})")
    print(f"  {runs} runs; pooled relative error: " + ", ".join(report))


def sample_lines(dump):
    """The dump's sample lines without their addresses (ASLR moves them)."""
    return sorted(tuple(s[:4]) for s in lib.dump_samples(dump))


def test_seed_replays_samples():
    """The same seed samples the same allocations: in one thread (sites),
    and with threads started in order that allocate at once (churn_threads,
    whose threads' samples all go to one line)."""
    for cmd in ([lib.prog("sites")], [lib.prog("churn_threads"), "4", "100000"]):
        seen = {}
        for seed in (7, 7, 8):
            _, dumps = lib.run_traced(cmd, seed=seed)
            assert lib.dump_meta(dumps[-1])["seed"] == str(seed)
            lines = sample_lines(dumps[-1])
            if seed in seen and seen[seed] != lines:
                raise AssertionError(f"{cmd}: seed {seed} sampled differently: "
                                     f"{seen[seed]} then {lines}")
            seen[seed] = lines
        if seen[7] == seen[8]:
            raise AssertionError(f"{cmd}: seeds 7 and 8 sampled alike: {seen[7]}")


def test_unseeded_runs_differ_and_say_their_seed():
    """Without HEAPTRACE_SEED, each run has its own seed, in the dump; running
    again with it replays the run."""
    exe = lib.prog("sites")
    first, second = (lib.run_traced([exe])[1][0] for _ in range(2))
    s1, s2 = lib.dump_meta(first)["seed"], lib.dump_meta(second)["seed"]
    assert s1 != s2, f"two unseeded runs both had seed {s1}"
    again = lib.run_traced([exe], seed=s1)[1][0]
    assert sample_lines(again) == sample_lines(first), f"seed {s1} did not replay"


def test_a_new_threads_first_allocation_is_sampled_like_any():
    """400 threads each make one 64-byte allocation, their first: about
    400 * 64 / rate = 0.05 of them are sampled; were a new thread's first
    allocation always sampled, all 400 would be."""
    for seed in (1, 2, 3):
        _, dumps = lib.run_traced([lib.prog("thread_firsts"), "400"], seed=seed)
        # the alloc count of a one-size site's line is its number of samples
        sampled = sum(ac for c, b, ac, ab, _ in lib.dump_samples(dumps[-1])
                      if ac and ab == 64 * ac)
        if sampled > 3:  # P(more than 3 of 400 at p = 1/8192) is about 2e-7
            raise AssertionError(f"seed {seed}: {sampled} of 400 first allocations sampled "
                                 f"(replay: HEAPTRACE_SEED={seed}; {dumps[-1]})")
