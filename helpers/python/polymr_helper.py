"""polymr's Python helper: loads a user's plain functions and runs them over stdin.

The driver embeds this file and runs it as
    python3 polymr_helper.py --role ROLE --script PATH [--function NAME]
        [--api auto|legacy|telemetry] [--format telemetry|lines] [--separator SEP] -- [USER ARGS...]
helpers/PROTOCOL.md is the contract; this file implements it with the standard library only,
and in one file, because the driver writes it alone into a temporary directory.

Hot loops bind everything to locals and test one byte per record for control lines: the
legacy map path must cost no more than a hand-written `json.loads` mapper.
"""
import codecs
import json
import os
import sys

USAGE = (
    "usage: polymr_helper.py --role map|combine|reduce --script PATH [--function NAME]\n"
    "       [--api auto|legacy|telemetry] [--format telemetry|lines] [--separator SEP]"
    " -- [USER ARGS...]\n"
)
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
            "format": "telemetry", "separator": "\t"}
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


class Context:
    """The telemetry API's `context`: `context.write(key, value)` emits one pair."""

    def __init__(self, out, sep):
        encode = json.JSONEncoder(separators=(",", ":")).encode
        parts = out.parts
        append = parts.append
        limit = out.LIMIT
        flush = out.flush
        size = 0

        def write(key, value):
            nonlocal size
            k = key if key.__class__ is str else str(key)
            if sep in k or "\n" in k or "\r" in k:
                raise ValueError("context.write: key %r contains the separator or a newline" % k)
            line = k + sep + encode(value) + "\n"
            append(line)
            size += len(line)
            if size >= limit:
                size = 0
                flush()

        self.write = write


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


def map_generic(inp, out, fn, api, fmt, sep, err):
    """The other map combinations: legacy/lines, telemetry/telemetry, telemetry/lines."""
    state = FileState()
    lineno = 0
    parts = out.parts
    append = parts.append
    flush = out.flush
    telemetry = api == "telemetry"
    lines = fmt == "lines"
    ctx = Context(out, sep) if telemetry else None
    size = 0
    for line in inp:
        if line[0] == 0:
            if line[1:2] == b"=":
                line = line[2:]
            else:
                control(line, state, err)
                lineno = 0
                continue
        lineno += 1
        rec = strip_record(line)
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
        if telemetry:
            fn(key, state.dims, value, ctx)
        else:
            r = as_text(fn(key, state.name, value))
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


def reduce_telemetry(inp, out, fn, sep, setup):
    """reduce(key, values, context): values is a one-pass iterator streamed from stdin."""
    sepb = sep.encode("utf-8")
    seplen = len(sepb)
    loads = json.loads
    scan = json.JSONDecoder().scan_once  # see map_legacy_telemetry
    ctx = Context(out, sep)
    if setup is not None:
        setup(ctx)

    def parse(line):
        """(key, raw value) of one input line, or None for an empty line."""
        if line[-1] == 10:
            line = line[:-1]
        if line[-1:] == b"\r":
            line = line[:-1]
        if not line:
            return None
        i = line.find(sepb)
        if i < 0:
            return line, b""
        return line[:i], line[i + seplen:]

    def decode(s):
        try:
            return loads(s)
        except (ValueError, RecursionError):
            # Not JSON (a binary mapper's plain text, an empty value): the text itself.
            return s

    lines = iter(inp)
    # state[0]: the first (key, raw value) not yet handed out; None at end of input.
    # state[1]: whether the current key's values were read to their end.
    state = [None, False]

    def advance():
        for line in lines:
            kv = parse(line)
            if kv is not None:
                return kv
        return None

    def values(key, first):
        yield decode(first.decode("utf-8", "surrogateescape"))
        for line in lines:
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
            if k != key:
                state[0] = (k, v)
                state[1] = True
                return
            s = v.decode("utf-8", "surrogateescape")
            try:
                x, end = scan(s, 0)
                if end != len(s):
                    x = decode(s)
            except (ValueError, StopIteration, RecursionError):
                x = decode(s)
            yield x
        state[0] = None
        state[1] = True

    state[0] = advance()
    while state[0] is not None:
        key, first = state[0]
        state[1] = False
        it = values(key, first)
        fn(key.decode("utf-8", "surrogateescape"), it, ctx)
        if not state[1]:
            # The function stopped early: skip the rest of this key without decoding it.
            it.close()
            while True:
                kv = advance()
                if kv is None or kv[0] != key:
                    state[0] = kv
                    break


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
        fn, api = pick_function(module, role, opts["function"], opts["api"])
        if role == "map":
            if api == "legacy" and opts["format"] == "telemetry":
                map_legacy_telemetry(inp, out, fn, err)
            else:
                map_generic(inp, out, fn, api, opts["format"], opts["separator"], err)
        elif api == "legacy":
            reduce_legacy(inp, out, fn, opts["separator"])
        else:
            setup = getattr(module, "setup_reduce", None)
            reduce_telemetry(inp, out, fn, opts["separator"], setup)
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
