"""`heaptrace report`: one self-contained HTML page (inline CSS, SVG and
script; nothing fetched from the network) for a series of dumps: the
summary, the timeline, the leak ranking, what held memory at the peak (the
peak dump, peak.py), the threads, and the `top` table
and flame graph of the latest dump, with a switch to show only what grew
since the first dump of that process. A series of several processes gets
a section per process (the largest growth first, as `leaks` orders them),
and the latest dump of the first one. The page records script errors in
an element of its own, and says `ready` in #status once its script ran."""
import html
import os

from . import flame, timeline
from .errors import HeaptraceError
from .leaks import OTHERS_SHOWN, describe_processes, process_title, summary_lines
from .profile import Selection, select_stacks, stack_label
from .threads import thread_groups, thread_memory
from .top import render_top
from .units import counted, format_value, percentage

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1240px;
       color: #1b1b1b; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 8px; } h2 { font-size: 17px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
ul.summary { padding-left: 18px; margin: 6px 0; }
.verdict { font-size: 15px; padding: 10px 14px; border-radius: 6px; margin: 12px 0;
           background: #fdecea; border: 1px solid #f1a9a0; }
.verdict.clean { background: #eaf6ec; border-color: #9fd3a8; }
table { border-collapse: collapse; margin: 6px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right;
         vertical-align: top; }
th { background: #f4f4f4; font-weight: 600; }
td.stack, th.stack { text-align: left; font-family: ui-monospace, monospace; font-size: 12.5px; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
details summary { cursor: pointer; }
details pre { margin: 4px 0 4px 14px; color: #444; }
pre.top { background: #fafafa; border: 1px solid #e4e4e4; padding: 8px; overflow-x: auto;
          font-size: 12.5px; }
.figure { overflow-x: auto; }
.muted { color: #666; }
label.switch { display: inline-block; margin: 6px 0; padding: 4px 10px; border-radius: 4px;
               background: #f0f4fb; border: 1px solid #c5d3ea; cursor: pointer; }
body.grown .all-view, body:not(.grown) .grown-view { display: none; }
#errors:empty { display: none; }
#errors { color: #b00020; white-space: pre-wrap; }
"""

# First in the page: every script error is written into #errors.
ERROR_HOOK = """
window.onerror = function (message, source, line) {
  document.getElementById("errors").textContent += message + " (" + source + ":" + line + ")\\n";
};
"""

PAGE_SCRIPT = """
document.getElementById("grown").addEventListener("change", function (e) {
  document.body.classList.toggle("grown", e.target.checked);
});
if (!document.getElementById("errors").textContent)
  document.getElementById("status").textContent = "ready";
"""


def _e(text):
    return html.escape(str(text), quote=True)


def _bytes(value):
    return format_value(value, "bytes")


def _table(headers, rows):
    """rows: [[(css class, html)]]; headers: [(css class, text)]."""
    out = ["<table><tr>" + "".join(f'<th class="{c}">{_e(h)}</th>' for c, h in headers)
           + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f'<td class="{c}">{cell}</td>' for c, cell in row)
                   + "</tr>")
    return "\n".join(out) + "</table>"


def _stack_cell(names):
    """The short label, opening onto the whole stack."""
    return (f"<details><summary>{_e(stack_label(names))}</summary>"
            f"<pre>{_e(chr(10).join(names) or '(no stack)')}</pre></details>")


def _verdict(a):
    if not a.enough:
        return ('<div class="verdict clean">Growth needs at least 3 dumps of one process; '
                f'given {sum(len(r.points) for r in a.runs)}.</div>')
    parts = []
    if a.growing:
        g = a.growing[0]
        parts.append(f"{len(a.growing)} stack{'s' if len(a.growing) > 1 else ''} "
                     f"grow{'' if len(a.growing) > 1 else 's'} steadily; first "
                     f"<b>{_e(stack_label(g.names))}</b>, "
                     f"+{_e(_bytes(g.trend.slope * 60))}/min, {_e(_bytes(g.now))} in use")
    leaked = sum(x.leaked for x in a.threads)
    if leaked:
        parts.append(f"{leaked} threads leaked, created at "
                     f"<b>{_e(stack_label(a.threads[0].names))}</b>")
    if not parts:
        return '<div class="verdict clean">No stack grows steadily; no thread leaked.</div>'
    return '<div class="verdict">' + "<br>".join(parts) + "</div>"


def _growth_tables(a):
    if not a.enough:
        return ""
    rows = [[("num", i), ("num", _e(_bytes(g.trend.slope * 60))), ("num", _e(_bytes(g.now))),
             ("num", _e(_bytes(g.trend.growth))), ("num", _e(percentage(g.share, 1))),
             ("num", f"{g.trend.fit:.2f}"), ("num", f"{g.trend.mono:.2f}"),
             ("stack", _stack_cell(g.names))] for i, g in enumerate(a.growing, 1)]
    out = []
    if rows:
        out.append(_table([("num", "#"), ("num", "rate/min"), ("num", "in use"),
                           ("num", "growth"), ("num", "share"), ("num", "fit"),
                           ("num", "mono"), ("stack", "stack")], rows))
    else:
        out.append("<p>No stack grows steadily.</p>")
    others = [[("num", _e(_bytes(g.trend.slope * 60))), ("num", _e(_bytes(g.now))),
               ("num", _e(_bytes(g.trend.growth))), ("num", f"{g.trend.fit:.2f}"),
               ("num", f"{g.trend.mono:.2f}"), ("stack", _e(g.verdict)),
               ("stack", _stack_cell(g.names))] for g in a.others[:OTHERS_SHOWN]]
    if others:
        out.append(f'<p class="muted">Not flagged: {counted(len(a.others), "stack")} changed without '
                   "steady growth; the largest changes:</p>")
        out.append(_table([("num", "rate/min"), ("num", "in use"), ("num", "growth"),
                           ("num", "fit"), ("num", "mono"), ("stack", "why"),
                           ("stack", "stack")], others))
    return "\n".join(out)


def _thread_table(a):
    leaked = {x.names: x for x in a.threads}
    groups = thread_groups(a.last.profile)
    names = sorted(set(groups) | set(leaked),
                   key=lambda n: (-(leaked[n].leaked if n in leaked else 0),
                                  -sum(groups.get(n, (0, 0))), n))
    if not names:
        return ("<p>No threads but the main thread (and heaptrace's own).</p>"
                if a.last.profile.dump.is_heaptrace else "<p>These dumps do not record threads.</p>")
    rows = []
    memory = thread_memory(a.last.profile)
    for n in names:
        live, unjoined = groups.get(n, (0, 0))
        x = leaked.get(n)
        rows.append([("num", x.leaked if x else 0), ("num", live), ("num", unjoined),
                     ("num", f"{x.trend.slope * 60:.0f}" if x else ""),
                     ("num", _e(_bytes(memory.get(n, 0)))), ("stack", _stack_cell(n))])
    return _table([("num", "leaked"), ("num", "running"), ("num", "unjoined"),
                   ("num", "rate/min"), ("num", "stacks"), ("stack", "created at")], rows)


def _latest(a, heading="h2"):
    """The top tables and flame graphs of the latest dump, whole and grown."""
    last = a.last.profile
    base = a.runs[-1].points[0].profile
    sel = Selection()
    whole = select_stacks(last, sel)
    grown = select_stacks(last, sel, base)
    base_name = os.path.basename(base.dump.path)
    note = f"(growth since {base_name})"
    out = ['<label class="switch"><input type="checkbox" id="grown"> show only what grew '
           f'since the first dump of this process ({_e(base_name)})</label>']
    if base is last:
        out.append('<p class="muted grown-view">Only one dump of this process: '
                   'nothing to compare with.</p>')
    out.append(f'<{heading}>Top: {_e(os.path.basename(last.dump.path))}</{heading}>')
    out.append(f'<pre class="top all-view">{_e(render_top(last, sel, whole, 25))}</pre>')
    out.append(f'<pre class="top grown-view">{_e(render_top(last, sel, grown, 25))}</pre>')
    out.append(f"<{heading}>Flame graph</{heading}>")
    out.append(f'<div class="figure all-view">{flame.svg(last, sel, whole)}</div>')
    out.append(f'<div class="figure grown-view">{flame.svg(last, sel, grown, note)}</div>')
    return "\n".join(out)


def _peak(a, h):
    """What held memory at the highest point of the last run, from its
    peak dump, when there is one."""
    point = a.runs[-1].peak
    if point is None:
        return []
    sel = Selection()
    text = render_top(point.profile, sel, select_stacks(point.profile, sel), 15)
    return [f"<{h}>At the peak: {_e(_bytes(point.heap))} in use, "
            f"{_e(os.path.basename(point.profile.dump.path))}</{h}>",
            f'<pre class="top">{_e(text)}</pre>']


def _process(a, h):
    """The summary, verdict, timeline, growth and threads of one process;
    h: the heading element of its parts."""
    summary = "".join(f"<li>{_e(line)}</li>" for line in summary_lines(a)[1:])
    return [f'<ul class="summary">{summary}</ul>', _verdict(a),
            f"<{h}>Timeline</{h}>", f'<div class="figure">{timeline.svg(a)}</div>',
            f"<{h}>Growing stacks</{h}>", _growth_tables(a), *_peak(a, h),
            f"<{h}>Threads at the last dump</{h}>", _thread_table(a)]


def render_report(analysed, short=()):
    """The page for [Analysis] (leaks.analyze_each), as text."""
    if not analysed:
        raise HeaptraceError("report: no process has 3 dumps or more; "
                             "choose one with --pid PID")
    head = ['<p class="muted">status: <span id="status">loading</span></p>',
            '<div id="errors"></div>']
    if len(analysed) == 1 and not short:
        a = analysed[0]
        title = f"heaptrace report: {summary_lines(a)[0].removeprefix('File: ')}"
        body = [f"<h1>{_e(title)}</h1>", *head, *_process(a, "h2"), _latest(a)]
    else:
        title = f"heaptrace report: {len(analysed) + len(short)} processes"
        listed = "".join(f"<li>{_e(line)}</li>" for line in describe_processes(analysed, short))
        body = [f"<h1>{_e(title)}</h1>", *head, f'<ul class="summary">{listed}</ul>']
        for a in analysed:
            body += [f"<h2>{_e(process_title(a.runs))}</h2>", *_process(a, "h3")]
        body += [f"<h2>The latest dump of {_e(process_title(analysed[0].runs))}</h2>",
                 _latest(analysed[0], "h3")]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style>"
            f"<script>{ERROR_HOOK}</script></head>\n<body>\n" + "\n".join(body)
            + f"\n<script>{PAGE_SCRIPT}</script>\n</body></html>\n")
