"""The command line: argument parsing, dispatch to the verbs, and the one
place where failures become a single `heaptrace: ...` line and an exit
status (2 for bad input, 1 for other failures) instead of a traceback.

Each verb's modules are imported when that verb runs, and only the running
verb's options are built (all of them for `heaptrace --help`): a small
report should not pay for loading the SVG, HTML and socket code."""
import argparse
import sys

from .errors import HeaptraceError


def _one_line(message):
    """A message with the control characters it quotes from the input (a
    stray \r, an escape sequence) shown escaped, so it stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class Warnings:
    """Prints each distinct warning once on stderr."""

    def __init__(self):
        self.seen = set()

    def __call__(self, message):
        if message not in self.seen:
            self.seen.add(message)
            print(f"heaptrace: warning: {_one_line(message)}", file=sys.stderr)


def _selection_options(parser):
    from .profile import DEFAULT_TYPE, KINDS, SAMPLE_TYPES
    types = parser.add_mutually_exclusive_group()
    for name, unit in SAMPLE_TYPES:
        what = "objects" if unit == "count" else "bytes"
        when = "in use at the dump" if name.startswith("inuse") else "allocated since start"
        types.add_argument(f"--{name}", dest="sample_type", action="store_const",
                           const=name, help=f"{what} {when}"
                           + (" (the default)" if name == DEFAULT_TYPE else ""))
    parser.set_defaults(sample_type=DEFAULT_TYPE)
    parser.add_argument("--kind", choices=KINDS, default="heap",
                        help="heap (malloc's blocks, the default) or mmap (anonymous "
                        "mappings the program made outside the allocator, mapped now)")
    parser.add_argument("--lines", action="store_true",
                        help="one node per source line instead of per function")
    _filter_options(parser)


def _filter_options(parser):
    parser.add_argument("--focus", metavar="RE",
                        help="only stacks with a frame matching RE")
    parser.add_argument("--ignore", metavar="RE",
                        help="leave out stacks with a frame matching RE")


def _min_age_option(parser):
    parser.add_argument("--min-age", type=float, metavar="S",
                        help="count only live blocks at least S seconds old "
                        "(S: 0 or a bound of the dumps' age buckets, HEAPTRACE_AGES)")


def _table_options(parser):
    from . import top
    from .units import BYTE_UNITS
    parser.add_argument("-n", "--nodecount", type=int, default=0, metavar="N",
                        help="show at most N rows (default: all)")
    parser.add_argument("--cum", action="store_true", help="sort by cum instead of flat")
    parser.add_argument("--nodefraction", type=float, default=top.NODE_FRACTION,
                        metavar="F", help="drop nodes with |cum| <= F * total "
                        f"(default {top.NODE_FRACTION})")
    parser.add_argument("--unit", default="auto",
                        choices=["auto"] + [u for u, _ in BYTE_UNITS],
                        help="unit for byte values (default: auto-scaled)")


def _process_options(parser):
    parser.add_argument("--pid", type=int, metavar="PID",
                        help="only the process PID (and its restarts); "
                        "default: each process of the series apart")
    parser.add_argument("--children", action="store_true",
                        help="with --pid: also the processes it started, each apart")


def _top_options(p):
    _selection_options(p)
    _table_options(p)
    p.add_argument("--base", metavar="OLD", help="subtract the dump OLD first")
    p.add_argument("--peak", action="store_true",
                   help="the peak dump of DUMP's process instead: what held memory "
                   "at the highest point of the run")
    _min_age_option(p)
    p.add_argument("dump", metavar="DUMP")


def _diff_options(p):
    _selection_options(p)
    _table_options(p)
    p.add_argument("--base", metavar="OLD", required=True, help="the older dump")
    p.add_argument("dump", metavar="NEW")


def _graph_options(p):
    from . import graph, top
    _selection_options(p)
    p.add_argument("-n", "--nodecount", type=int, default=graph.NODE_COUNT, metavar="N",
                   help=f"at most N nodes (default {graph.NODE_COUNT})")
    p.add_argument("--nodefraction", type=float, default=top.NODE_FRACTION, metavar="F")
    p.add_argument("--edgefraction", type=float, default=graph.EDGE_FRACTION, metavar="F")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="out.svg, out.png or out.dot")
    p.add_argument("dump", metavar="DUMP")


def _flame_options(p):
    _selection_options(p)
    p.add_argument("--folded", action="store_true",
                   help="write collapsed stacks (flamegraph.pl, inferno, speedscope)")
    p.add_argument("-o", "--output", metavar="FILE", help="default: standard output")
    p.add_argument("dump", metavar="DUMP")


def _leaks_options(p):
    _filter_options(p)
    _min_age_option(p)
    p.add_argument("-n", "--nodecount", type=int, default=10, metavar="N",
                   help="show at most N growing stacks (default 10, 0: all)")
    _process_options(p)
    p.add_argument("dumps", nargs="+", metavar="DUMP")


def _timeline_options(p):
    from . import timeline
    p.add_argument("-n", "--nodecount", type=int, default=timeline.STACKS_SHOWN, metavar="N",
                   help=f"stack at most N growing stacks (default {timeline.STACKS_SHOWN})")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="out.svg")
    _process_options(p)
    p.add_argument("dumps", nargs="+", metavar="DUMP")


def _report_options(p):
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="report.html")
    _process_options(p)
    p.add_argument("dumps", nargs="+", metavar="DUMP")


def _dump_only(p):
    p.add_argument("dump", metavar="DUMP")


def _pprof_options(p):
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p.add_argument("dump", metavar="DUMP")


def _run_options(p):
    p.add_argument("--rate", metavar="BYTES", help="HEAPTRACE_RATE")
    p.add_argument("--interval", metavar="S", help="HEAPTRACE_INTERVAL")
    p.add_argument("--dir", metavar="D", help="HEAPTRACE_DIR")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")


def _dump_options(p):
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the file (default 10)")
    p.add_argument("pid", type=int, metavar="PID")


def _status_options(p):
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for the answer (default 10)")
    p.add_argument("pid", type=int, metavar="PID")


# (verb, help, adds its options)
VERBS = [
    ("top", "the pprof flat/cum table", _top_options),
    ("diff", "what changed between two dumps", _diff_options),
    ("graph", "a call graph (SVG, PNG or DOT)", _graph_options),
    ("flame", "a flame graph (SVG) or folded stacks", _flame_options),
    ("leaks", "the stacks whose memory grows steadily over dumps", _leaks_options),
    ("timeline", "RSS, heap and growing stacks over time (SVG)", _timeline_options),
    ("report", "one self-contained HTML page for a series of dumps", _report_options),
    ("threads", "live and unjoined threads by creation stack", _dump_only),
    ("rss", "the process's RSS explained: heap, allocator, mmaps, "
     "thread stacks, files, shared memory, unexplained", _dump_only),
    ("pprof", "convert to profile.proto (gzipped)", _pprof_options),
    ("run", "run a command under the preload", _run_options),
    ("dump", "ask a traced process for a dump", _dump_options),
    ("status", "what a traced process does now (its control socket)", _status_options),
]


def build_parser(only=None):
    """The command's parser; with only (a verb), the other verbs get no
    options, so that only the modules of that verb are imported."""
    parser = argparse.ArgumentParser(
        prog="heaptrace",
        description="Render heaptrace heap dumps (pprof legacy heap profiles) "
        "and run or signal traced programs.")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, help_text, add_options in VERBS:
        p = verbs.add_parser(name, help=help_text)
        if only is None or name == only:
            add_options(p)
    return parser


def _selection(args):
    from .profile import Selection
    return Selection(args.sample_type, args.lines, args.focus, args.ignore,
                     getattr(args, "min_age", None))


def _write(path, data):
    """Writes text or bytes to path, or to stdout when path is None."""
    if path is None:
        sys.stdout.write(data)
        return
    try:
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
    except OSError as e:
        raise HeaptraceError(f"{path}: {e.strerror or e}") from None


def run_verb(args, warn):
    if args.verb == "run":
        from . import launch
        return launch.run(args.command, args.rate, args.interval, args.dir)
    if args.verb in ("dump", "status"):
        from . import signal_dump
        try:
            if args.verb == "dump":
                print(signal_dump.request_dump(args.pid, args.timeout))
            else:
                sys.stdout.write(signal_dump.render_status(
                    signal_dump.status(args.pid, args.timeout)))
        except HeaptraceError as e:
            raise HeaptraceError(f"{args.verb}: {e}") from None
        return 0
    from .profile import Selection, load_profile, select_stacks
    if args.verb in ("leaks", "timeline", "report"):
        from .series import choose, load_series
        from . import leaks
        selection = Selection(lines=True, focus=getattr(args, "focus", None),
                              ignore=getattr(args, "ignore", None),
                              min_age=getattr(args, "min_age", None))
        chains = choose(load_series(args.dumps, warn), args.pid, args.children)
        analysed, short = leaks.analyze_each(chains, selection)
        if args.verb == "leaks":
            sys.stdout.write(leaks.render_sections(analysed, short, args.nodecount))
        elif args.verb == "timeline":
            from . import timeline
            _write(args.output, timeline.svg_sections(analysed, args.nodecount))
        else:
            from . import report
            _write(args.output, report.render_report(analysed, short))
        return 0
    if getattr(args, "peak", False):
        from . import peak
        args.dump = peak.find(args.dump)
    kind = getattr(args, "kind", "heap")
    if kind == "mmap" and args.sample_type.startswith("alloc"):
        raise HeaptraceError(f"--kind mmap has the mappings of the dump's moment only; "
                             f"--{args.sample_type} is not recorded for them "
                             "(use --inuse_space or --inuse_objects)")
    profile = load_profile(args.dump, warn, kind)
    if args.verb == "pprof":
        from . import pprof_proto
        _write(args.output, pprof_proto.encode(profile))
        return 0
    if args.verb == "threads":
        from . import threads
        sys.stdout.write(threads.render_threads(profile))
        return 0
    if args.verb == "rss":
        from . import rss
        sys.stdout.write(rss.render_rss(profile))
        return 0
    selection = _selection(args)
    if args.verb in ("top", "diff"):
        base = load_profile(args.base, warn, kind) if args.base else None
        stacks = select_stacks(profile, selection, base)
        from . import top
        sys.stdout.write(top.render_top(profile, selection, stacks, args.nodecount,
                                        args.cum, args.nodefraction, args.unit))
    elif args.verb == "graph":
        stacks = select_stacks(profile, selection)
        from . import graph
        graph.write_graph(profile, selection, stacks, args.output, args.nodecount,
                          args.nodefraction, args.edgefraction)
    elif args.verb == "flame":
        from . import flame
        stacks = select_stacks(profile, selection)
        if args.folded:
            _write(args.output, flame.folded(stacks))
        else:
            _write(args.output, flame.svg(profile, selection, stacks))
    return 0


def parse(argv):
    """The options of argv. A verb's options alone are parsed by a parser
    of that verb only, as the command's own subparser would (same prog,
    same messages): every parser argparse makes looks up its translated
    texts on disk, which costs more than a small report. Arguments that
    parser does not know go through the whole parser, for its message."""
    for name, _, add_options in VERBS:
        if argv and argv[0] == name:
            parser = argparse.ArgumentParser(prog=f"heaptrace {name}")
            add_options(parser)
            args, unknown = parser.parse_known_args(argv[1:])
            if not unknown:
                args.verb = name
                return args
            return build_parser(name).parse_args(argv)
    return build_parser().parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    try:
        return run_verb(args, Warnings())
    except HeaptraceError as e:
        print(f"heaptrace: {_one_line(str(e))}", file=sys.stderr)
        return e.status
    except BrokenPipeError:
        sys.stderr.close()
        return 1
    except KeyboardInterrupt:
        return 130
