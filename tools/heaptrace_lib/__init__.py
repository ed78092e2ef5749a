"""heaptrace_lib: the modules behind the `heaptrace` command (see cli.py)."""
