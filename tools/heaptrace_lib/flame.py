"""`heaptrace flame`: a self-contained SVG flame graph (root at the bottom,
each frame as wide as its value; hovering shows name, value and share,
clicking zooms into a frame, clicking the root zooms out; the script keeps
to its own SVG element, so that several can share an HTML page) and the collapsed
`root;...;leaf value` lines that flamegraph.pl, inferno and speedscope read."""
import hashlib
from xml.sax.saxutils import escape, quoteattr

from .top import legend
from .units import format_value, percentage

WIDTH = 1200
FRAME_HEIGHT = 17
TOP_MARGIN = 40
CHAR_WIDTH = 7

SCRIPT = """
(function () {
var svg = document.currentScript.closest("svg"), W = %d;
function zoom(g) {
  var x0 = +g.dataset.x, v0 = +g.dataset.v, d0 = +g.dataset.d;
  svg.querySelectorAll("g.fr").forEach(function (f) {
    var x = +f.dataset.x, v = +f.dataset.v, d = +f.dataset.d;
    var inside = d >= d0 && x >= x0 && x + v <= x0 + v0;
    var below = d < d0 && x <= x0 && x + v >= x0 + v0;
    f.style.display = inside || below ? "" : "none";
    if (!(inside || below)) return;
    var nx = below ? 0 : (x - x0) / v0 * W, nw = below ? W : v / v0 * W;
    var r = f.querySelector("rect"), t = f.querySelector("text");
    r.setAttribute("x", nx); r.setAttribute("width", nw);
    t.setAttribute("x", nx + 3);
    var n = f.dataset.n, fit = Math.floor((nw - 6) / %d);
    t.textContent = fit >= n.length ? n : fit > 2 ? n.slice(0, fit - 2) + ".." : "";
  });
}
svg.querySelectorAll("g.fr").forEach(function (f) {
  f.addEventListener("click", function () { zoom(f); });
});
})();
"""


def folded(stacks):
    """Collapsed stacks, root first, one line per distinct stack with a
    positive value."""
    lines = [";".join(reversed(names)) + f" {round(value)}"
             for value, names in stacks if value > 0 and names]
    return "".join(line + "\n" for line in sorted(lines))


class _Node:
    def __init__(self, name):
        self.name = name
        self.value = 0
        self.children = {}


def _tree(stacks):
    root = _Node("all")
    for value, names in stacks:
        if value <= 0:
            continue
        root.value += value
        node = root
        for name in reversed(names):
            node = node.children.setdefault(name, _Node(name))
            node.value += value
    return root


def _color(name):
    h = hashlib.md5(name.encode("utf-8", "surrogateescape")).digest()
    return "rgb(%d,%d,%d)" % (205 + h[0] % 50, 80 + h[1] % 130, h[2] % 55)


def _label(name, width):
    fit = int((width - 6) // CHAR_WIDTH)
    if fit >= len(name):
        return name
    return name[:fit - 2] + ".." if fit > 2 else ""


def svg(profile, selection, stacks, note=""):
    """The flame graph; note is added to the title line."""
    root = _tree(stacks)
    total = root.value
    frames = []

    # Depth first, children by name; a loop, as stacks may be thousands deep.
    todo = [(root, 0, 0)]
    while todo:
        node, x, depth = todo.pop()
        frames.append((node, x, depth))
        placed = []
        for child in sorted(node.children.values(), key=lambda c: c.name):
            placed.append((child, x, depth + 1))
            x += child.value
        todo.extend(reversed(placed))
    depth_max = max(d for _, _, d in frames)
    height = TOP_MARGIN + (depth_max + 1) * FRAME_HEIGHT + 10
    scale = WIDTH / total if total else 0
    title = " ".join(legend(profile, selection) + ([note] if note else []))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="monospace" font-size="12">',
           f'<text x="{WIDTH // 2}" y="20" text-anchor="middle" font-size="15">'
           f'{escape(title)} total {escape(format_value(total, selection.unit))}</text>']
    for node, x, depth in frames:
        width = node.value * scale
        y = height - 10 - (depth + 1) * FRAME_HEIGHT
        info = (f"{node.name} ({format_value(node.value, selection.unit)}, "
                f"{percentage(node.value, total).strip()})")
        fill = "rgb(240,240,240)" if depth == 0 else _color(node.name)
        out.append(
            f'<g class="fr" data-n={quoteattr(node.name)} data-v="{node.value}" '
            f'data-x="{x}" data-d="{depth}"><title>{escape(info)}</title>'
            f'<rect x="{x * scale:.3f}" y="{y}" width="{width:.3f}" '
            f'height="{FRAME_HEIGHT - 1}" fill="{fill}" rx="2"/>'
            f'<text x="{x * scale + 3:.3f}" y="{y + FRAME_HEIGHT - 5}">'
            f'{escape(_label(node.name, width))}</text></g>')
    out.append(f"<script><![CDATA[{SCRIPT % (WIDTH, CHAR_WIDTH)}]]></script>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
