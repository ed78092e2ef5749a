"""`heaptrace pprof`: the profile as a gzipped profile.proto (the message
layout of google/pprof's proto/profile.proto), written by hand with
protobuf's varint encoding. Functions carry names, files and lines already
resolved, inlined calls are several lines of one location, and mappings carry
build ids, so `go tool pprof` reads it without the binaries."""
import gzip
import os

from .profile import SAMPLE_TYPES
from .elf import NotElf, read_elf

# Field numbers of profile.proto.
PROFILE_SAMPLE_TYPE, PROFILE_SAMPLE, PROFILE_MAPPING, PROFILE_LOCATION = 1, 2, 3, 4
PROFILE_FUNCTION, PROFILE_STRING_TABLE = 5, 6
PROFILE_TIME_NANOS, PROFILE_PERIOD_TYPE, PROFILE_PERIOD = 9, 11, 12
PROFILE_COMMENT, PROFILE_DEFAULT_SAMPLE_TYPE = 13, 14
VALUE_TYPE_TYPE, VALUE_TYPE_UNIT = 1, 2
SAMPLE_LOCATION_ID, SAMPLE_VALUE = 1, 2
MAPPING_ID, MAPPING_START, MAPPING_LIMIT, MAPPING_OFFSET = 1, 2, 3, 4
MAPPING_FILENAME, MAPPING_BUILD_ID = 5, 6
MAPPING_HAS_FUNCTIONS, MAPPING_HAS_FILENAMES = 7, 8
MAPPING_HAS_LINE_NUMBERS, MAPPING_HAS_INLINE_FRAMES = 9, 10
LOCATION_ID, LOCATION_MAPPING_ID, LOCATION_ADDRESS, LOCATION_LINE = 1, 2, 3, 4
LINE_FUNCTION_ID, LINE_LINE = 1, 2
FUNCTION_ID, FUNCTION_NAME, FUNCTION_SYSTEM_NAME, FUNCTION_FILENAME = 1, 2, 3, 4

WIRE_VARINT, WIRE_BYTES = 0, 2


def varint(value):
    """Protobuf base-128 varint; negative int64 values as two's complement."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Message:
    """A protobuf message under construction."""

    def __init__(self):
        self.buf = bytearray()

    def int(self, field, value):
        if value:
            self.buf += varint(field << 3 | WIRE_VARINT) + varint(value)
        return self

    def bytes(self, field, data):
        self.buf += varint(field << 3 | WIRE_BYTES) + varint(len(data)) + data
        return self

    def message(self, field, msg):
        return self.bytes(field, bytes(msg.buf))

    def packed(self, field, values):
        if values:
            self.bytes(field, b"".join(varint(v) for v in values))
        return self


class Strings:
    """The string table; index 0 is the empty string."""

    def __init__(self):
        self.table = [""]
        self.index = {"": 0}

    def __call__(self, text):
        if text not in self.index:
            self.index[text] = len(self.table)
            self.table.append(text)
        return self.index[text]


def _build_id(dump, mapping):
    if dump.build_id_for(mapping.path):
        return dump.build_id_for(mapping.path)
    try:
        return read_elf(mapping.path).build_id
    except (OSError, NotElf):
        return ""


def encode(profile):
    """The gzipped profile.proto bytes of a Profile."""
    dump = profile.dump
    strings = Strings()
    out = Message()
    for name, unit in SAMPLE_TYPES:
        out.message(PROFILE_SAMPLE_TYPE, Message().int(VALUE_TYPE_TYPE, strings(name))
                    .int(VALUE_TYPE_UNIT, strings(unit)))
    for sample in profile.samples:
        out.message(PROFILE_SAMPLE, Message()
                    .packed(SAMPLE_LOCATION_ID, [loc.id for loc in sample.locations])
                    .packed(SAMPLE_VALUE, sample.pprof_values(profile.dump)))
    mapping_ids = {}
    for mapping in dump.mappings:
        if "x" not in mapping.perms:
            continue
        mapping_ids[id(mapping)] = len(mapping_ids) + 1
        out.message(PROFILE_MAPPING, Message()
                    .int(MAPPING_ID, mapping_ids[id(mapping)])
                    .int(MAPPING_START, mapping.start)
                    .int(MAPPING_LIMIT, mapping.end)
                    .int(MAPPING_OFFSET, mapping.offset)
                    .int(MAPPING_FILENAME, strings(mapping.path))
                    .int(MAPPING_BUILD_ID, strings(_build_id(dump, mapping)
                                                   if mapping.path.startswith("/") else ""))
                    .int(MAPPING_HAS_FUNCTIONS, 1).int(MAPPING_HAS_FILENAMES, 1)
                    .int(MAPPING_HAS_LINE_NUMBERS, 1).int(MAPPING_HAS_INLINE_FRAMES, 1))
    functions = {}
    for loc in profile.locations:
        msg = Message().int(LOCATION_ID, loc.id).int(LOCATION_ADDRESS, loc.address)
        msg.int(LOCATION_MAPPING_ID, mapping_ids.get(id(loc.mapping), 0))
        for frame in loc.frames:
            key = (frame.name, frame.file)
            if key not in functions:
                functions[key] = len(functions) + 1
                out_fn = (Message().int(FUNCTION_ID, functions[key])
                          .int(FUNCTION_NAME, strings(frame.name))
                          .int(FUNCTION_SYSTEM_NAME, strings(frame.name))
                          .int(FUNCTION_FILENAME, strings(frame.file)))
                out.message(PROFILE_FUNCTION, out_fn)
            msg.message(LOCATION_LINE, Message().int(LINE_FUNCTION_ID, functions[key])
                        .int(LINE_LINE, frame.line))
        out.message(PROFILE_LOCATION, msg)
    out.int(PROFILE_TIME_NANOS, dump.meta_int("time_unix_ns") or 0)
    out.message(PROFILE_PERIOD_TYPE, Message().int(VALUE_TYPE_TYPE, strings("space"))
                .int(VALUE_TYPE_UNIT, strings("bytes")))
    out.int(PROFILE_PERIOD, dump.period)
    out.packed(PROFILE_COMMENT, [strings(f"heaptrace dump {os.path.basename(dump.path)}")])
    out.int(PROFILE_DEFAULT_SAMPLE_TYPE, strings("inuse_space"))
    for text in strings.table:
        out.bytes(PROFILE_STRING_TABLE, text.encode("utf-8", "surrogateescape"))
    return gzip.compress(bytes(out.buf), mtime=0)
