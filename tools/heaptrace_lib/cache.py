"""Where the heaptrace command keeps what it may reuse between runs (the
symbol answers of ELF files, its own compiled bytecode): `$HEAPTRACE_CACHE`,
else `$XDG_CACHE_HOME/heaptrace`, else `~/.cache/heaptrace`;
`HEAPTRACE_CACHE=off` keeps nothing. This module imports only os: the
command reads it before anything else, to put its bytecode there."""
import os

OFF = "off"


def root():
    """The cache directory, or None when caching is off."""
    explicit = os.environ.get("HEAPTRACE_CACHE", "")
    if explicit == OFF:
        return None
    if explicit:
        return explicit
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "heaptrace")
