"""How steadily a quantity grows over a series of dumps that may span
restarts: a least-squares line fitted within each run (one slope, an
intercept per run, so the drop at a restart is not read as shrinkage), how
much of the variation the line explains, what share of the movement between
consecutive dumps went up, and when in the runs the upward movement
happened. Leak ranking and thread counting both judge growth this way."""
from .record import record


@record
class Trend:
    slope: float     # units per second
    fit: float       # R^2 of the line within runs (0 when nothing varies)
    mono: float      # upward movement / all movement between consecutive dumps
    growth: float    # slope * the time the runs cover
    center: float    # when the upward movement happened: 0 the start, 1 the end


def _pooled(runs):
    """(slope, SS explained, SS total, seconds covered) of the line fitted
    to [[(t, y)]] with one intercept per run."""
    sxy = sxx = syy = span = 0.0
    for points in runs:
        if len(points) < 2:
            continue
        tm = sum(t for t, _ in points) / len(points)
        ym = sum(y for _, y in points) / len(points)
        sxy += sum((t - tm) * (y - ym) for t, y in points)
        sxx += sum((t - tm) ** 2 for t, _ in points)
        syy += sum((y - ym) ** 2 for _, y in points)
        span += points[-1][0] - points[0][0]
    slope = sxy / sxx if sxx else 0.0
    return slope, slope * sxy, syy, span


def trend(runs):
    """The Trend of [[(seconds, value)] per run, each in time order]."""
    slope, explained, total, span = _pooled(runs)
    up = down = weighted = 0.0
    for points in runs:
        begin, length = points[0][0], points[-1][0] - points[0][0]
        for (ta, a), (tb, b) in zip(points, points[1:]):
            if b > a:
                up += b - a
                weighted += (b - a) * (((ta + tb) / 2 - begin) / length if length else 0.0)
            else:
                down += a - b
    return Trend(slope=slope,
                 fit=explained / total if total else 0.0,
                 mono=up / (up + down) if up + down else 0.0,
                 growth=slope * span,
                 center=weighted / up if up else 0.0)
