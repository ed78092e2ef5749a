"""Numbers printed the way pprof prints them: bytes scaled to the largest
binary unit that keeps the value at least 1 (B, kB, MB, ... with two
decimals, `.00` dropped), counts as plain numbers, percentages as in
pprof's tables; and times of day and durations as the reports print them."""
import datetime

BYTE_UNITS = (("B", 1), ("kB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30),
              ("TB", 1 << 40), ("PB", 1 << 50))


def _trimmed(value):
    text = f"{value:.2f}"
    return text[:-3] if text.endswith(".00") else text


def format_value(value, unit, to_unit="auto"):
    """value in `unit` ("bytes" or "count") as text; to_unit is "auto" or
    one of BYTE_UNITS' names."""
    if unit != "bytes":
        text = _trimmed(value)
        return "0" if text in ("0", "-0") else text
    factor, name = 1, "B"
    for unit_name, unit_factor in BYTE_UNITS:
        if to_unit == "auto" and abs(value) / unit_factor >= 1 or to_unit == unit_name:
            factor, name = unit_factor, unit_name
    text = _trimmed(value / factor)
    return "0" if text in ("0", "-0") else text + name


def percentage(value, total):
    ratio = abs(value / total) * 100 if total else 0.0
    if 99.95 <= ratio <= 100.05:
        return "  100%"
    if ratio >= 1.0:
        return f"{ratio:5.2f}%"
    return f"{ratio:5.2g}%"


def format_time(seconds, fmt="%Y-%m-%d %H:%M:%S UTC"):
    """A time since the epoch, in UTC."""
    when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return when.strftime(fmt)


def format_duration(seconds):
    """1.5 s, 42 s, 3m05s, 2h10m."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def counted(n, noun):
    """'1 stack', '2 stacks'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
