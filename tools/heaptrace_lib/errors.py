"""The exceptions the command reports to the user. cli.main catches
HeaptraceError and prints one line, so no failure ends in a traceback."""


class HeaptraceError(Exception):
    """A failure the user can act on; printed as `heaptrace: <message>`."""

    status = 1


class InputError(HeaptraceError):
    """An input file that cannot be read as a heap profile: empty, binary,
    truncated or foreign. Printed as `heaptrace: FILE:LINE: what is wrong`."""

    status = 2

    def __init__(self, path, line, message):
        # line is None when the file could not be opened at all.
        super().__init__(f"{path}: {message}" if line is None else f"{path}:{line}: {message}")
