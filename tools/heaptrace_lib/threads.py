"""Threads by creation stack (the dump's `# threads:` lines, symbolized),
and `heaptrace threads DUMP`: how many threads each pthread_create call
stack has running, and how many exited without being joined or detached,
whose stacks are still held, and the memory those stacks (with their
guards) reserve."""
from .profile import node_name
from .top import legend
from .units import format_value


def thread_groups(profile):
    """{creation stack (node names with lines, leaf first): (live, unjoined)}."""
    groups = {}
    for group in profile.threads:
        names = tuple(node_name(f, True) for loc in group.locations for f in loc.frames)
        live, unjoined = groups.get(names, (0, 0))
        groups[names] = (live + group.live, unjoined + group.unjoined)
    return groups


def thread_memory(profile):
    """{creation stack: bytes of its threads' stacks and guards}."""
    memory = {}
    for group in profile.threads:
        names = tuple(node_name(f, True) for loc in group.locations for f in loc.frames)
        memory[names] = memory.get(names, 0) + group.stack_bytes + group.guard_bytes
    return memory


def memory_total(profile):
    """Bytes of all threads' stacks and guards; None when not recorded."""
    stacks = profile.dump.thread_stacks_total
    return sum(stacks) if stacks is not None else None


def totals(profile):
    """(live, unjoined) over all creation stacks, main thread and the
    tracer's own not counted."""
    if profile.dump.threads_total is not None:
        return profile.dump.threads_total
    groups = thread_groups(profile).values()
    return sum(g[0] for g in groups), sum(g[1] for g in groups)


def format_stack(names, indent="        "):
    """A stack one frame a line, leaf first."""
    return "".join(f"{indent}{name}\n" for name in names)


def render_threads(profile):
    groups = sorted(thread_groups(profile).items(),
                    key=lambda g: (-(g[1][0] + g[1][1]), g[0]))
    live, unjoined = totals(profile)
    out = legend(profile)
    if not profile.dump.is_heaptrace:
        out.append("This dump does not record threads (not a heaptrace dump).")
        return "\n".join(out) + "\n"
    out.append(f"Threads: {live} running, {unjoined} exited but not joined or detached "
               "(the main thread and heaptrace's own not counted)")
    memory = thread_memory(profile)
    total = memory_total(profile)
    if total is not None:
        out.append(f"Thread stacks: {format_value(total, 'bytes')} reserved, guards included "
                   "(stacks the program supplied are its own memory, not counted)")
    text = "\n".join(out) + "\n"
    if groups:
        text += f"{'live':>8} {'unjoined':>9} {'stacks':>9}  created at\n"
    for names, (group_live, group_unjoined) in groups:
        stack = format_stack(names or ("(no stack)",), " " * 30)
        text += (f"{group_live:>8} {group_unjoined:>9} "
                 f"{format_value(memory.get(names, 0), 'bytes'):>9}  {stack[30:]}")
    return text
