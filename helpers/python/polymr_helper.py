"""polymr's Python helper: loads a user's plain functions and runs them over stdin.

The driver embeds this file and runs it as
    python3 polymr_helper.py --role ROLE --script PATH [--function NAME]
        [--api auto|legacy|telemetry] [--format telemetry|lines] [--separator SEP] -- [USER ARGS...]
helpers/PROTOCOL.md is the contract; this file implements it with the standard library only
(orjson is used when importable), and in one file, because the driver writes it alone into a
temporary directory. The telemetry API follows mozilla/telemetry-server's mapreduce/job.py:
where a job could tell the difference, job.py's behaviour wins.

Hot loops bind everything to locals and test one byte per record for control lines: the
legacy map path must cost less than a hand-written `json.loads` mapper.
"""
import codecs
import json
import os
import sys
from collections.abc import Sequence

try:
    if os.environ.get("POLYMR_HELPER_ORJSON", "1") == "0":
        raise ImportError("disabled by POLYMR_HELPER_ORJSON=0")
    import orjson

    # orjson refuses some documents json accepts (lone surrogates, NaN) and reads integers
    # beyond 64 bits as floats where json gives the exact int: every caller falls back to
    # json for a record orjson refused or that holds a run of 19 digits (LONG_INT), so the
    # parsed values are json's whenever the two would differ.
    FAST_LOADS = orjson.loads
except ImportError:
    FAST_LOADS = None

# Digits to "0", everything else to "x": `LONG_INT in text.translate(DIGITS)` finds a run of
# 19 digits (-9223372036854775809 is the first integer orjson turns into a float) at C speed,
# ~1 ns a byte, where a regular expression costs ten times that.
DIGITS = bytes(48 if 48 <= i <= 57 else 120 for i in range(256))
LONG_INT = b"0" * 19

USAGE = (
    "usage: polymr_helper.py --role map|combine|reduce --script PATH [--function NAME]\n"
    "       [--api auto|legacy|telemetry] [--format telemetry|lines] [--separator SEP]"
    " [--map-only] -- [USER ARGS...]\n"
)
FLAGS = ("map-only",)
EPIPE_EXIT = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by a closed pipe


def _unencodable(exc):
    # Undecodable input bytes come back as they came in (surrogateescape); other lone
    # surrogates (JSON allows "\ud83d") become U+FFFD rather than killing the task.
    if isinstance(exc, UnicodeEncodeError):
        out = bytearray()
        for c in exc.object[exc.start:exc.end]:
            c = ord(c)
            out += bytes((c - 0xDC00,)) if 0xDC80 <= c <= 0xDCFF else b"\xef\xbf\xbd"
        return bytes(out), exc.end
    raise exc


codecs.register_error("polymr", _unencodable)


class UsageError(Exception):
    pass


class NoFunction(Exception):
    pass


def parse_args(argv):
    """Hand-parsed (argparse costs start-up time and mishandles a second `--`)."""
    if "--" in argv:
        cut = argv.index("--")
        own, user = argv[:cut], argv[cut + 1:]
    else:
        own, user = argv, []
    opts = {"role": None, "script": None, "function": None, "api": "auto",
            "format": "telemetry", "separator": "\t", "map-only": None}
    choices = {"role": ("map", "combine", "reduce"), "api": ("auto", "legacy", "telemetry"),
               "format": ("telemetry", "lines")}
    i = 0
    while i < len(own):
        arg = own[i]
        if arg in ("-h", "--help"):
            sys.stderr.write(USAGE)
            sys.exit(0)
        if not arg.startswith("--"):
            raise UsageError("unexpected argument %r (user arguments go after `--`)" % arg)
        name, eq, value = arg[2:].partition("=")
        if name not in opts:
            raise UsageError("unknown option --%s" % name)
        if name in FLAGS:
            if eq:
                raise UsageError("--%s takes no value" % name)
            opts[name] = True
            i += 1
            continue
        if not eq:
            i += 1
            if i >= len(own):
                raise UsageError("--%s needs a value" % name)
            value = own[i]
        if name in choices and value not in choices[name]:
            raise UsageError("--%s must be one of %s, not %r" % (name, "|".join(choices[name]), value))
        opts[name] = value
        i += 1
    if opts["role"] is None:
        raise UsageError("--role is required")
    if opts["script"] is None:
        raise UsageError("--script is required")
    sep = opts["separator"]
    if not sep or "\n" in sep or "\r" in sep:
        raise UsageError("--separator must be non-empty and contain no newline")
    return opts, user


# --- output -------------------------------------------------------------------------------

def _stdout_closed():
    try:
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(EPIPE_EXIT)


class _RawOut:
    """fd writer whose EPIPE ends the process quietly, wherever the write came from (even
    from inside user code that catches every exception)."""

    def __init__(self, fd):
        self.fd = fd

    def write(self, data):
        fd = self.fd
        view = memoryview(data)
        try:
            while view:
                n = os.write(fd, view)
                view = view[n:]
        except BrokenPipeError:
            _stdout_closed()
        return len(data)


class Output:
    """Pieces of text joined and written in ~64 KiB writes."""

    LIMIT = 1 << 16

    def __init__(self, fd):
        self.raw = _RawOut(fd)
        self.parts = []

    def flush(self):
        # The hot loops append to `parts` and count the size themselves, then call this.
        if self.parts:
            data = "".join(self.parts).encode("utf-8", "polymr")
            del self.parts[:]
            self.raw.write(data)


def as_text(r):
    """A legacy function's return value as output text (None/"" → "")."""
    if r is None:
        return ""
    if isinstance(r, str):
        return r
    if isinstance(r, (bytes, bytearray)):
        return bytes(r).decode("utf-8", "surrogateescape")
    return str(r)


# --- between stages: job.py's marshal, as JSON ---------------------------------------------
#
# Values travel as compact JSON, so a Python mapper's values reach a JS or binary reducer.
# What JSON cannot say (tuples, sets, bytes, dicts with keys that are not strings) travels
# as TAG + JSON in which such objects are wrapped in one-key objects ({"\x01t": [...]}),
# so a reducer gets back what the mapper wrote, as it did through job.py's marshal. Keys are
# written as they are when they are plain text, else as TAG + JSON (a tuple as an array,
# read back as a tuple).

TAG = "\x01"
_PLAIN = frozenset((str, int, float, bool, type(None)))
_WRAPPERS = {"\x01t": tuple, "\x01s": set, "\x01f": frozenset}


def _needs_tags(v):
    """Whether plain JSON would lose something of `v` (a tuple, a set, a non-str dict key)."""
    c = v.__class__
    if c is list:
        for x in v:
            if x.__class__ not in _PLAIN and _needs_tags(x):
                return True
        return False
    if c is dict:
        for k, x in v.items():
            if k.__class__ is not str or k[:1] == TAG:
                return True
            if x.__class__ not in _PLAIN and _needs_tags(x):
                return True
        return False
    return c not in _PLAIN


def _tagged(v):
    c = v.__class__
    if c in _PLAIN:
        return v
    if c is list:
        return [_tagged(x) for x in v]
    if c is dict:
        if all(k.__class__ is str and k[:1] != TAG for k in v):
            return {k: _tagged(x) for k, x in v.items()}
        return {"\x01d": [[_tagged(k), _tagged(x)] for k, x in v.items()]}
    if isinstance(v, tuple):
        return {"\x01t": [_tagged(x) for x in v]}
    if isinstance(v, frozenset):
        return {"\x01f": [_tagged(x) for x in v]}
    if isinstance(v, set):
        return {"\x01s": [_tagged(x) for x in v]}
    if isinstance(v, (bytes, bytearray)):
        return {"\x01b": bytes(v).decode("latin-1")}
    return v  # int, float and str subclasses; anything else makes the encoder raise


def _untag(d):
    """json object_hook: the wrapped objects back to what they were."""
    if len(d) == 1:
        for k, x in d.items():
            if k[:1] == TAG:
                if k == "\x01d":
                    return {_hashable(a): b for a, b in x}
                if k == "\x01b":
                    return x.encode("latin-1")
                kind = _WRAPPERS.get(k)
                if kind is not None:
                    return kind(_hashable(a) for a in x) if kind is not tuple else tuple(x)
    return d


def _hashable(x):
    # Dict keys and set members were hashable when written; arrays among them were tuples.
    return tuple(_hashable(a) for a in x) if x.__class__ is list else x


_dumps = json.JSONEncoder(separators=(",", ":")).encode


def encode_value(value):
    """A value as shuffle text (see above). Raises ValueError, as job.py's marshal did, for
    a value it cannot write."""
    try:
        if value.__class__ in _PLAIN or not _needs_tags(value):
            return _dumps(value)
        return TAG + _dumps(_tagged(value))
    except (TypeError, RecursionError) as e:
        raise ValueError("context.write: cannot write a %s value: %s"
                         % (type(value).__name__, e)) from None


def encode_key(key, sep):
    if key.__class__ is str:
        if key[:1] != TAG and sep not in key and "\n" not in key and "\r" not in key:
            return key
        text = TAG + _dumps(key)  # JSON escapes the newlines (and a TAB separator)
    else:
        try:
            text = TAG + _dumps(_tagged(_listed(key)))
        except (TypeError, RecursionError) as e:
            raise ValueError("context.write: cannot write a %s key: %s"
                             % (type(key).__name__, e)) from None
    if sep in text:
        raise ValueError("context.write: key %r contains the separator" % (key,))
    return text


def _listed(key):
    # A tuple key is written as a JSON array (the reader turns arrays back into tuples).
    if isinstance(key, tuple):
        return [_listed(x) for x in key]
    return key


def decode_key(raw):
    """A key as the user wrote it (bytes in, str or the tagged object out)."""
    if raw[:1] == b"\x01":
        try:
            return _hashable(json.loads(raw[1:], object_hook=_untag))
        except ValueError:
            pass
    return raw.decode("utf-8", "surrogateescape")


def make_value_decoder():
    """bytes → the value written: JSON (orjson first, then json), tagged JSON, or the text
    itself when it is neither (a native mapper's output, the empty value)."""
    fast = FAST_LOADS
    loads = json.loads

    def decode(raw):
        if raw[:1] == b"\x01":
            try:
                return loads(raw[1:], object_hook=_untag)
            except (ValueError, RecursionError):
                return raw.decode("utf-8", "surrogateescape")
        if fast is not None and (len(raw) < 19 or LONG_INT not in raw.translate(DIGITS)):
            try:
                return fast(raw)
            except ValueError:
                pass
        s = raw.decode("utf-8", "surrogateescape")
        try:
            return loads(s)
        except (ValueError, RecursionError):
            return s

    return decode


class Context:
    """The `context` of map and combine when a stage follows: `write(key, value)` emits one
    `key SEP value` line of shuffle text."""

    def __init__(self, out, sep):
        parts = out.parts
        append = parts.append
        limit = out.LIMIT
        flush = out.flush
        dumps = _dumps
        plain = _PLAIN
        size = 0

        def write(key, value):
            nonlocal size
            if key.__class__ is str and key[:1] != TAG and sep not in key \
                    and "\n" not in key and "\r" not in key:
                k = key
            else:
                k = encode_key(key, sep)
            v = dumps(value) if value.__class__ in plain else encode_value(value)
            line = k + sep + v + "\n"
            append(line)
            size += len(line)
            if size >= limit:
                size = 0
                flush()

        self.write = write


class _Sink:
    """A text file's `write` over the helper's output (job.py's TextContext._sink)."""

    def __init__(self, out):
        self.out = out
        self.size = 0

    def write(self, s):
        if s.__class__ is not str and not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        self.out.parts.append(s)
        self.size += len(s)
        if self.size >= self.out.LIMIT:
            self.size = 0
            self.out.flush()
        return len(s)

    def flush(self):
        self.out.flush()


class TextContext:
    """job.py's TextContext, the context of the job's last stage: `str(key)`,
    `field_separator`, `str(value)`, `record_separator`; `writeline` and `writecsv`."""

    def __init__(self, out, field_separator="\t", record_separator="\n"):
        self._sink = _Sink(out)
        self._sinks = {0: self._sink}
        self.field_separator = field_separator
        self.record_separator = record_separator

    def write(self, key, value):
        w = self._sink.write
        w(str(key))
        w(self.field_separator)
        w(str(value))
        w(self.record_separator)

    def writecsv(self, values):
        import csv

        csv.writer(self._sink).writerow(values)

    def writeline(self, value):
        self._sink.write(value)
        self._sink.write(self.record_separator)

    def finish(self):
        self._sink.flush()


class Collector:
    """The context job.py's reducer hands `combine`: a write replaces the values collected so
    far for the key being combined (job.py's Collector.write)."""

    def __init__(self):
        self.key = None
        self.values = None

    def write(self, key, value):
        if key != self.key:
            raise ValueError("combine wrote key %r while combining %r: polymr's reducer "
                             "combines one key at a time" % (key, self.key))
        self.values = [value]


# --- loading user code --------------------------------------------------------------------

def load_script(path):
    import importlib.machinery
    import importlib.util

    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    name = os.path.basename(path)
    for suffix in (".py", ".pyw"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    name = name.replace(".", "_") or "user_script"
    loader = importlib.machinery.SourceFileLoader(name, path)
    spec = importlib.util.spec_from_loader(name, loader, origin=path)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = path
    sys.modules[name] = module
    # The script's directory first, as if it had been run directly; not the helper's own.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        sys.path[0] = directory
    else:
        sys.path.insert(0, directory)
    loader.exec_module(module)
    return module


def arity(fn):
    """Number of positional parameters, or None when it cannot be told (*args, builtins)."""
    code = getattr(fn, "__code__", None)
    if code is not None and not getattr(fn, "__self__", None) and not code.co_flags & 0x04:
        return code.co_argcount
    try:
        import inspect

        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    n = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


def pick_function(module, role, name, api):
    """Returns (function, api) with api "legacy" or "telemetry"."""
    if name:
        candidates = [name]
    elif role == "map":
        candidates = ["mapper", "map"]
    elif role == "reduce":
        candidates = ["reducer", "reduce"]
    else:
        candidates = ["combine", "reducer", "reduce"]
    fn = None
    for c in candidates:
        fn = getattr(module, c, None)
        if fn is not None:
            name = c
            break
    if fn is None or not callable(fn):
        raise NoFunction("%s defines no %s function (looked for %s)" % (
            module.__file__, role, ", ".join("`%s`" % c for c in candidates)))
    if api != "auto":
        return fn, api
    n = arity(fn)
    if role == "map":
        if n == 3:
            return fn, "legacy"
        if n == 4:
            return fn, "telemetry"
        return fn, "legacy" if name == "mapper" else "telemetry"
    if n == 2:
        return fn, "legacy"
    if n == 3:
        return fn, "telemetry"
    return fn, "legacy" if name == "reducer" else "telemetry"


# --- map ----------------------------------------------------------------------------------

class FileState:
    """What the last `F` control line said."""

    def __init__(self):
        self.index = 0
        self.dims = []
        self.name = ""


def control(line, state, err):
    """Handles a control line that is not an escaped record."""
    if line[1:2] == b"F":
        if line[-1:] == b"\n":
            line = line[:-1]
        fields = line.split(b"\t", 3)
        if len(fields) == 4 and fields[1].isdigit():
            state.index = int(fields[1])
            try:
                dims = json.loads(fields[2])
            except ValueError:
                dims = None
            state.dims = dims if isinstance(dims, list) else []
            state.name = fields[3].decode("utf-8", "surrogateescape")
            return
    err("polymr helper: ignoring a malformed control line: %r\n" % line[:80])


def invalid(err, state, lineno, message):
    message = message.replace("\r", " ").replace("\n", " ")
    err("polymr:invalid:%d:%d:%s\n" % (state.index, lineno, message))


_INVALID = object()


def parse_json_slowly(data, err, state, lineno):
    """json.loads' own verdict on a record's JSON (bytes), reporting it when invalid."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        invalid(err, state, lineno, "invalid JSON: %s" % e)
        return _INVALID


def strip_record(line):
    if line[-1:] == b"\n":
        line = line[:-1]
    if line[-1:] == b"\r":
        line = line[:-1]
    return line


def map_legacy_telemetry(inp, out, fn, err):
    """mapper(uuid, file, js) over `<uuid>TAB<json>` records: the benchmarked path."""
    state = FileState()
    name = state.name
    lineno = 0
    # The C scanner behind json.loads, called directly: json.loads(bytes) spends ~1.5 us a
    # record detecting the encoding and matching whitespace before it gets there.
    scan = json.JSONDecoder().scan_once
    slow = parse_json_slowly
    fast = FAST_LOADS
    digits = DIGITS
    long_int = LONG_INT
    parts = out.parts
    append = parts.append
    flush = out.flush
    str_ = str
    size = 0
    for line in inp:
        if line[0] == 0:
            if line[1:2] == b"=":  # an escaped record
                line = line[2:]
            else:
                control(line, state, err)
                name = state.name
                lineno = 0
                continue
        lineno += 1
        i = line.find(b"\t")
        if i < 0:
            if strip_record(line):
                invalid(err, state, lineno, "no TAB between the uuid and the JSON")
            continue
        js = _INVALID
        if fast is not None and long_int not in line.translate(digits):
            # orjson takes the bytes as they are (its trailing whitespace is JSON's); json's
            # scanner is the fallback for what orjson refuses or may read as a float (a long
            # integer), so the values and the verdicts are json's.
            try:
                js = fast(memoryview(line)[i + 1:])
            except ValueError:
                pass
        if js is _INVALID:
            try:
                s = (line[i + 1:-1] if line[-1] == 10 else line[i + 1:]).decode("utf-8", "surrogatepass")
                js, end = scan(s, 0)
                if end != len(s):
                    raise ValueError  # whitespace (\r) or garbage after the value
            except (ValueError, StopIteration, RecursionError):
                js = slow(line[i + 1:], err, state, lineno)
                if js is _INVALID:
                    continue
        r = fn(line[:i].decode("utf-8", "surrogateescape"), name, js)
        if r:
            if r.__class__ is not str_:
                r = as_text(r)
                if not r:
                    continue
            if r[-1] != "\n":
                r += "\n"
            append(r)
            size += len(r)
            if size >= 65536:
                size = 0
                flush()


def map_job(inp, out, fn, fmt, ctx, err):
    """map(key, dims, value, context), as job.py's Mapper called it: the record split at its
    first TAB after trailing CR/LF are stripped; a ValueError skips the record (job.py's "Bad
    line"), reported as an invalid record; any other exception fails the task."""
    state = FileState()
    lineno = 0
    lines = fmt == "lines"
    for line in inp:
        if line[0] == 0:
            if line[1:2] == b"=":
                line = line[2:]
            else:
                control(line, state, err)
                lineno = 0
                continue
        lineno += 1
        rec = line.rstrip(b"\r\n")
        if not rec:
            continue
        if lines:
            key = None
            value = rec.decode("utf-8", "surrogateescape")
        else:
            i = rec.find(b"\t")
            if i < 0:
                invalid(err, state, lineno, "no TAB between the uuid and the JSON")
                continue
            key = rec[:i].decode("utf-8", "surrogateescape")
            value = rec[i + 1:].decode("utf-8", "surrogateescape")
        try:
            fn(key, state.dims, value, ctx)
        except ValueError as e:
            invalid(err, state, lineno, "%s: %s" % (type(e).__name__, e))


def map_lines(inp, out, fn, err):
    """mapper(None, file, line) over `lines` records."""
    state = FileState()
    parts = out.parts
    append = parts.append
    flush = out.flush
    size = 0
    for line in inp:
        if line[0] == 0:
            if line[1:2] == b"=":
                line = line[2:]
            else:
                control(line, state, err)
                continue
        rec = strip_record(line)
        if not rec:
            continue
        r = as_text(fn(None, state.name, rec.decode("utf-8", "surrogateescape")))
        if r:
            if r[-1] != "\n":
                r += "\n"
            append(r)
            size += len(r)
            if size >= 65536:
                size = 0
                flush()


# --- reduce / combine ---------------------------------------------------------------------

def reduce_legacy(inp, out, fn, sep):
    """reduce(key, values): values is a list of the raw value strings of one key."""
    sepb = sep.encode("utf-8")
    seplen = len(sepb)
    parts = out.parts
    append = parts.append
    flush = out.flush
    cur = None
    values = []
    size = 0

    def emit(key, values):
        nonlocal size
        r = as_text(fn(key.decode("utf-8", "surrogateescape"), values))
        if r:
            if r[-1] != "\n":
                r += "\n"
            append(r)
            size += len(r)
            if size >= 65536:
                size = 0
                flush()

    for line in inp:
        if line[-1] == 10:
            line = line[:-1]
            if not line:
                continue
        if line[-1] == 13:
            line = line[:-1]
            if not line:
                continue
        i = line.find(sepb)
        if i < 0:
            key, value = line, ""
        else:
            key = line[:i]
            value = line[i + seplen:].decode("utf-8", "surrogateescape")
        if key != cur:
            if cur is not None:
                emit(cur, values)
            cur = key
            values = [value]
        else:
            values.append(value)
    if cur is not None:
        emit(cur, values)


class SpilledValues(Sequence):
    """A key's values once they outgrow VALUES_MEMORY: their encoded text in a temporary
    file, with one offset each in memory (8 bytes a value). Indexing, `len` and repeated
    iteration work as on a list; it cannot be changed (no append, sort or del)."""

    def __init__(self, raws, decode):
        import array
        import tempfile

        self._decode = decode
        self._file = tempfile.TemporaryFile(prefix="polymr-values-")
        self._offsets = array.array("q")
        self._end = 0
        for r in raws:
            self.append_raw(r)

    def append_raw(self, raw):
        self._offsets.append(self._end)
        self._file.seek(self._end)
        self._file.write(raw)
        self._file.write(b"\n")
        self._end += len(raw) + 1

    def __len__(self):
        return len(self._offsets)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self._offsets)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("values index out of range")
        start = self._offsets[i]
        end = self._offsets[i + 1] if i + 1 < n else self._end
        self._file.seek(start)
        return self._decode(self._file.read(end - start - 1))

    def __iter__(self):
        self._file.flush()
        with open(os.dup(self._file.fileno()), "rb", buffering=1 << 16) as f:
            f.seek(0)
            for line in f:
                yield self._decode(line[:-1])

    def __repr__(self):
        return "<polymr values of %d items, spilled to disk>" % len(self)

    def close(self):
        self._file.close()


# How many bytes of encoded values of one key are held as a list before they spill to disk.
VALUES_MEMORY = int(os.environ.get("POLYMR_HELPER_VALUES_MEMORY", 64 << 20))
COMBINE_SIZE = 50  # job.py's Reducer.COMBINE_SIZE


def groups(inp, sep):
    """(key bytes, [value bytes, ...]) per key of the sorted input, the value list growing as
    it is read: each yields before the next line of the key is read."""
    sepb = sep.encode("utf-8")
    seplen = len(sepb)
    cur = None
    for line in inp:
        if line[-1] == 10:
            line = line[:-1]
        if line[-1:] == b"\r":
            line = line[:-1]
        if not line:
            continue
        i = line.find(sepb)
        if i < 0:
            k, v = line, b""
        else:
            k, v = line[:i], line[i + seplen:]
        if k != cur:
            if cur is not None:
                yield None, None  # end of the previous key
            cur = k
            yield k, v
        else:
            yield None, v
    if cur is not None:
        yield None, None


def reduce_job(inp, out, fn, sep, ctx, combine=None, identity=False):
    """reduce(key, values, context) / combine(key, values, context) as job.py called them:
    `values` is a list of what the mappers wrote (a SpilledValues past VALUES_MEMORY), in the
    order they were written; with `combine` (the reducer of a job that has one), job.py's
    Collector is reproduced: each time a key has 50 values, combine(key, values, collector)
    may replace them with what it writes. With `identity` (a job without reduce), every
    value is written as it comes, as job.py's map-only reducer did."""
    decode = make_value_decoder()
    limit = VALUES_MEMORY
    collector = Collector() if combine is not None else None
    key = None
    raws = values = spilled = None
    size = 0
    for k, v in groups(inp, sep):
        if k is not None:
            key = decode_key(k)
            raws, values, spilled, size = [], [], None, 0
            if collector is not None:
                collector.key = key
        if v is None:
            # The key's last value was read.
            if identity:
                continue
            if spilled is not None:
                vals = spilled
            elif collector is not None:
                vals = values
            else:
                vals = [decode(r) for r in raws]
            raws = values = None
            try:
                fn(key, vals, ctx)
            finally:
                if spilled is not None:
                    spilled.close()
            continue
        if identity:
            ctx.write(key, decode(v))
        elif collector is not None:
            values.append(decode(v))
            if len(values) >= COMBINE_SIZE:
                collector.values = values
                combine(key, values, collector)
                values = collector.values
        elif spilled is not None:
            spilled.append_raw(v)
        else:
            raws.append(v)
            size += len(v) + 48
            if size > limit:
                spilled = SpilledValues(raws, decode)
                raws = None


# --- main ---------------------------------------------------------------------------------

def print_user_traceback(exc):
    """The traceback without the outer frames of the helper and of importlib."""
    import traceback

    tb = exc.__traceback__
    me = os.path.abspath(__file__)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith("<frozen importlib") or os.path.abspath(filename) == me):
            break
        tb = tb.tb_next
    sys.stderr.write("".join(traceback.format_exception(type(exc), exc, tb)))


def run(module, opts, inp, out, err):
    role, sep, fmt = opts["role"], opts["separator"], opts["format"]
    identity = False
    try:
        fn, api = pick_function(module, role, opts["function"], opts["api"])
    except NoFunction:
        # job.py runs a script without `reduce` as a map-only job: its reducer writes every
        # pair as it comes. A reducer pointed at such a script does the same.
        if role != "reduce" or opts["function"] or not callable(getattr(module, "map", None)):
            raise
        fn, api, identity = None, "telemetry", True
    setup = getattr(module, "setup_reduce", None)
    setup = setup if callable(setup) else None
    if role == "map":
        if api == "legacy":
            if fmt == "telemetry":
                map_legacy_telemetry(inp, out, fn, err)
            else:
                map_lines(inp, out, fn, err)
            return
        if opts["map-only"]:
            # The map output is the job's output: job.py's map-only reducer wrote it through
            # a TextContext, after setup_reduce.
            ctx = TextContext(out)
            if setup is not None:
                setup(ctx)
        else:
            ctx = Context(out, sep)
        map_job(inp, out, fn, fmt, ctx, err)
    elif api == "legacy":
        reduce_legacy(inp, out, fn, sep)
    elif role == "combine":
        reduce_job(inp, out, fn, sep, Context(out, sep))
    else:
        ctx = TextContext(out)
        if setup is not None:
            setup(ctx)
        combine = getattr(module, "combine", None)
        combine = combine if callable(combine) and combine is not fn else None
        reduce_job(inp, out, fn, sep, ctx, combine=combine, identity=identity)


def main():
    try:
        opts, user_args = parse_args(sys.argv[1:])
    except UsageError as e:
        sys.stderr.write("polymr helper: %s\n%s" % (e, USAGE))
        return 2

    # Output goes to a private copy of fd 1; fd 1 itself (print, C code, subprocesses)
    # becomes stderr, so stray writes are log lines and never corrupt the records.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    for fd in (0, out_fd):
        # An inherited O_NONBLOCK would make reads and writes fail with EAGAIN.
        try:
            if not os.get_blocking(fd):
                os.set_blocking(fd, True)
        except OSError:
            pass
    sys.stdout = sys.stderr
    out = Output(out_fd)
    err = sys.stderr.write
    inp = open(0, "rb", buffering=1 << 16, closefd=False)

    role = opts["role"]
    sys.argv = [os.path.abspath(opts["script"])] + user_args
    if not os.path.isfile(opts["script"]):
        sys.stderr.write("polymr helper: no such script: %s\n" % opts["script"])
        return 1
    try:
        module = load_script(opts["script"])
        run(module, opts, inp, out, err)
        out.flush()
    except NoFunction as e:
        sys.stderr.write("polymr helper: %s\n" % e)
        sys.stderr.flush()
        os._exit(1)
    except SystemExit:
        out.flush()
        raise
    except KeyboardInterrupt:
        sys.stderr.flush()
        os._exit(130)
    except BaseException as e:
        print_user_traceback(e)
        sys.stderr.flush()
        os._exit(1)
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
