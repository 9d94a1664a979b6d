"""Tests of polymr_helper.py, run as the driver runs it: a real subprocess, real user scripts.

    python3 -m unittest discover -s helpers/python        (from the repository root)

The conformance cases in helpers/conformance/cases.json are run here and by the JS suite.
The orjson tests need a Python that imports orjson: this one, $POLYMR_TEST_PYTHON, or
target/test-venv/bin/python (`make test-deps` puts orjson there); without one they are
skipped, and say so on stderr.
"""
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, "polymr_helper.py")
ROOT = os.path.dirname(os.path.dirname(HERE))
CASES = os.path.join(os.path.dirname(HERE), "conformance", "cases.json")


def python_with_orjson():
    """An interpreter that imports orjson, or None."""
    candidates = [sys.executable, os.environ.get("POLYMR_TEST_PYTHON"),
                  os.path.join(ROOT, "target", "test-venv", "bin", "python")]
    for py in candidates:
        if py and os.path.exists(py) and subprocess.run(
                [py, "-c", "import orjson"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0:
            return py
    return None


ORJSON_PYTHON = python_with_orjson()


def skip_without_orjson(test):
    if ORJSON_PYTHON is None:
        sys.stderr.write("\nSKIPPED %s: no Python here imports orjson (run `make test-deps`, "
                         "or set POLYMR_TEST_PYTHON)\n" % test.id())
        test.skipTest("orjson is not importable by %s, $POLYMR_TEST_PYTHON or "
                      "target/test-venv/bin/python" % sys.executable)


def F(index, name, dims="[]"):
    """A file control line."""
    return b"\0F\t%d\t%s\t%s\n" % (index, dims.encode(), name.encode())


class HelperTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def script(self, source, name="job.py"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        return path

    def args(self, role, script, *extra, user=()):
        return [sys.executable, HELPER, "--role", role, "--script", script, *extra, "--", *user]

    def run_helper(self, role, source, stdin, *extra, user=()):
        env = dict(os.environ)
        env.pop("PYTHONUNBUFFERED", None)
        p = subprocess.run(self.args(role, self.script(source), *extra, user=user),
                           input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, cwd=self.dir, timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def ok(self, role, source, stdin, *extra, user=()):
        rc, out, err = self.run_helper(role, source, stdin, *extra, user=user)
        self.assertEqual(rc, 0, err)
        return out, err


LEGACY_MAPPER = """
def mapper(uuid, file, js):
    return "%s %s %s" % (js["info"]["OS"], uuid, file)
"""


class MapTest(HelperTest):
    def test_legacy_mapper_gets_uuid_file_and_parsed_json(self):
        stdin = (F(0, "saved-session/Firefox/a.log", '["saved-session","Firefox"]')
                 + b'u-1\t{"info":{"OS":"WINNT"}}\n'
                 + b'u-2\t{"info":{"OS":"Linux"}}\n')
        out, err = self.ok("map", LEGACY_MAPPER, stdin)
        self.assertEqual(out, "WINNT u-1 saved-session/Firefox/a.log\n"
                              "Linux u-2 saved-session/Firefox/a.log\n")
        self.assertEqual(err, "")

    def test_legacy_return_values(self):
        source = """
        def mapper(uuid, file, js):
            return js
        """
        stdin = F(0, "f") + b'a\t"x\\n"\nb\tnull\nc\t""\nd\t"y"\ne\t7\nf\t0\n'
        out, _ = self.ok("map", source, stdin)
        self.assertEqual(out, "x\ny\n7\n")

    def test_undecodable_bytes_round_trip_and_lone_surrogates_do_not_crash(self):
        source = """
        def mapper(uuid, file, js):
            return uuid + " " + js
        """
        p = subprocess.run(self.args("map", self.script(source)),
                           input=F(0, "f") + b'\xff\xfe\t"\\ud83d!"\n',
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"\xff\xfe \xef\xbf\xbd!\n")

    def test_telemetry_map_writes_through_context(self):
        source = """
        def map(key, dims, value, context):
            assert isinstance(value, str)
            context.write(dims[0], {"uuid": key, "raw": value})
        """
        stdin = F(0, "f", '["saved-session","Firefox"]') + b'u-1\t{"a": 1}\n'
        out, _ = self.ok("map", source, stdin)
        self.assertEqual(out, 'saved-session\t{"uuid":"u-1","raw":"{\\"a\\": 1}"}\n')

    def test_key_with_separator_is_tagged_json_not_an_error(self):
        source = """
        def map(key, dims, value, context):
            context.write("a\\tb", 1)
            context.write(("os", 3), (1, [2]))
        """
        out, _ = self.ok("map", source, F(0, "f") + b"u\t{}\n")
        self.assertEqual(out, '\x01"a\\tb"\t1\n\x01["os",3]\t\x01{"\\u0001t":[1,[2]]}\n')

    def test_invalid_records_are_reported_with_file_index_and_line(self):
        source = """
        def mapper(uuid, file, js):
            return uuid + " ok"
        """
        stdin = (F(0, "first")
                 + b'a\t{}\n'
                 + b'b\t{not json\n'        # line 2
                 + b'\n'                     # line 3: empty, skipped silently
                 + b'no tab here\n'          # line 4
                 + F(7, "second")
                 + b'c\t[1,\n'               # line 1 of file 7
                 + b'd\t{}\n'
                 + b'e\t\xff\n')             # line 3: not UTF-8
        rc, out, err = self.run_helper("map", source, stdin)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "a ok\nd ok\n")
        reports = [l for l in err.splitlines() if l.startswith("polymr:invalid:")]
        self.assertEqual([r.split(":")[2:4] for r in reports],
                         [["0", "2"], ["0", "4"], ["7", "1"], ["7", "3"]])
        self.assertIn("invalid JSON", reports[0])
        self.assertIn("no TAB", reports[1])
        self.assertEqual(len(err.splitlines()), 4, err)

    def test_escaped_records(self):
        source = """
        def mapper(uuid, file, js):
            return repr(uuid) + " " + str(js)
        """
        stdin = F(0, "f") + b'\0=\0abc\t1\n' + b'\0=plain\t2\n' + b'\0=bad\n'
        rc, out, err = self.run_helper("map", source, stdin)
        self.assertEqual(out, "'\\x00abc' 1\n'plain' 2\n")
        self.assertIn("polymr:invalid:0:3:", err)

    def test_crlf_line_endings(self):
        source = """
        def map(key, dims, value, context):
            context.write(key, value)
        """
        stdin = F(0, "f") + b'u1\t{"a":1}\r\n\r\nu2\t[2]\r\n'
        out, _ = self.ok("map", source, stdin)
        self.assertEqual(out, 'u1\t"{\\"a\\":1}"\nu2\t"[2]"\n')
        legacy = """
        def mapper(uuid, file, js):
            return "%s %r" % (uuid, js)
        """
        out, _ = self.ok("map", legacy, stdin)
        self.assertEqual(out, "u1 {'a': 1}\nu2 [2]\n")

    def test_lines_format(self):
        legacy = """
        def mapper(uuid, file, line):
            return "%r %s %s" % (uuid, file, line)
        """
        stdin = F(0, "logs/a.txt") + b"first line\r\n\nsecond\tline\n" + b"last"
        out, _ = self.ok("map", legacy, stdin, "--format", "lines")
        self.assertEqual(out, "None logs/a.txt first line\nNone logs/a.txt second\tline\n"
                              "None logs/a.txt last\n")
        telemetry = """
        def map(key, dims, value, context):
            context.write(str(key), [dims, value])
        """
        out, _ = self.ok("map", telemetry, F(0, "x", '["a"]') + b"one\n", "--format", "lines")
        self.assertEqual(out, 'None\t[["a"],"one"]\n')

    def test_api_override_and_function_name(self):
        source = """
        def count(*args):
            return "%d args" % len(args)
        """
        out, _ = self.ok("map", source, F(0, "f") + b"u\t{}\n",
                         "--function", "count", "--api", "legacy")
        self.assertEqual(out, "3 args\n")

    def test_missing_function_fails(self):
        rc, _, err = self.run_helper("map", "x = 1\n", b"")
        self.assertEqual(rc, 1)
        self.assertIn("`mapper`, `map`", err)

    def test_user_exception_exits_1_with_traceback(self):
        source = """
        def inner(js):
            raise RuntimeError("boom " + str(js))

        def mapper(uuid, file, js):
            return inner(js)
        """
        rc, out, err = self.run_helper("map", source, F(0, "f") + b"u\t42\n")
        self.assertEqual(rc, 1)
        self.assertIn("Traceback (most recent call last)", err)
        self.assertIn("in inner", err)
        self.assertIn("RuntimeError: boom 42", err)
        self.assertNotIn("polymr_helper.py", err)

    def test_user_arguments_reach_sys_argv_and_prints_go_to_stderr(self):
        source = """
        import sys
        print("argv", sys.argv[1:])
        SCRIPT = sys.argv[0]

        def mapper(uuid, file, js):
            print("log line")
            return SCRIPT
        """
        out, err = self.ok("map", source, F(0, "f") + b"u\t{}\n", user=["--top", "5", "--"])
        self.assertEqual(out, os.path.join(self.dir, "job.py") + "\n")
        self.assertIn("argv ['--top', '5', '--']", err)
        self.assertIn("log line", err)

    def test_sibling_modules_import(self):
        self.script("FACTOR = 3\n", name="shared_stuff.py")
        source = """
        import shared_stuff
        def mapper(uuid, file, js):
            return str(js * shared_stuff.FACTOR)
        """
        out, _ = self.ok("map", source, F(0, "f") + b"u\t2\n")
        self.assertEqual(out, "6\n")

    def test_closed_stdout_exits_quietly(self):
        source = """
        def mapper(uuid, file, js):
            return "x" * 1000
        """
        p = subprocess.Popen(self.args("map", self.script(source)), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p.stdout.close()
        try:
            p.stdin.write(F(0, "f") + b"u\t{}\n" * 200000)
        except BrokenPipeError:
            pass
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        with p.stderr:
            err = p.stderr.read()
        self.assertEqual(p.wait(timeout=60), 141)
        self.assertEqual(err, b"")

    def test_large_input_is_streamed(self):
        source = """
        def mapper(uuid, file, js):
            return uuid
        """
        n = 50000
        stdin = F(0, "f") + b"".join(b"%d\t{}\n" % i for i in range(n))
        out, _ = self.ok("map", source, stdin)
        self.assertEqual(out.split("\n")[:-1], [str(i) for i in range(n)])


def read_line_within(stream, seconds):
    """One line from a pipe, or None when nothing arrives in time."""
    deadline = time.monotonic() + seconds
    data = b""
    fd = stream.fileno()
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode()


class ReduceTest(HelperTest):
    def test_legacy_reduce_with_space_separator(self):
        source = """
        def reduce(key, values):
            return "%s %d" % (key, sum(int(v or 0) for v in values))
        """
        stdin = b"Darwin 1\nLinux 1\nLinux 2\n\nWINNT 1\r\nWINNT 1\nWINNT 1\nlonely\n"
        out, _ = self.ok("reduce", source, stdin, "--separator", " ")
        self.assertEqual(out, "Darwin 1\nLinux 3\nWINNT 3\nlonely 0\n")

    def test_legacy_values_are_a_list_of_raw_strings(self):
        source = """
        def reduce(key, values):
            return key + "=" + repr(values)
        """
        out, _ = self.ok("reduce", source, b'k {"a": 1}\nk two words\n', "--separator", " ")
        self.assertEqual(out, "k=['{\"a\": 1}', 'two words']\n")

    TELEMETRY_REDUCER = """
    def setup_reduce(context):
        context.write("setup", None)

    def reduce(key, values, context):
        total = 0
        kinds = []
        for v in values:
            kinds.append(type(v).__name__)
            total += v if isinstance(v, int) else 0
        context.write(key, {"total": total, "kinds": kinds})
    """

    def test_telemetry_reduce_gets_json_decoded_values(self):
        stdin = b'a\t1\na\t2\nb\t{"x":1}\nb\t5\nc\tnot json\nd\n'
        out, _ = self.ok("reduce", self.TELEMETRY_REDUCER, stdin)
        self.assertEqual(out, "setup\tNone\n"
                              "a\t{'total': 3, 'kinds': ['int', 'int']}\n"
                              "b\t{'total': 5, 'kinds': ['dict', 'int']}\n"
                              "c\t{'total': 0, 'kinds': ['str']}\n"
                              "d\t{'total': 0, 'kinds': ['str']}\n")

    def test_combine_prefers_combine_and_skips_setup_reduce(self):
        source = """
        def setup_reduce(context):
            context.write("setup", 1)

        def combine(key, values, context):
            context.write(key, sum(values))

        def reduce(key, values, context):
            raise AssertionError("combine must be used")
        """
        out, _ = self.ok("combine", source, b"a\t1\na\t2\nb\t3\n")
        # job.py calls setup_reduce with the reducer's TextContext only.
        self.assertEqual(out, "a\t3\nb\t3\n")

    def test_combine_falls_back_to_reduce(self):
        source = """
        def reduce(key, values, context):
            context.write(key, [v for v in values])
        """
        out, _ = self.ok("combine", source, b"a\t1\na\t[2]\n")
        self.assertEqual(out, "a\t[1,[2]]\n")

    def test_values_are_a_list_in_input_order(self):
        source = """
        def reduce(key, values, context):
            assert type(values) is list
            context.write(key, (len(values), values[0], values[-1], list(values) + list(values)))
        """
        stdin = b"all\t3\nall\t1\nall\t2\nfew\t9\n"
        out, _ = self.ok("reduce", source, stdin)
        self.assertEqual(out, "all\t(3, 3, 2, [3, 1, 2, 3, 1, 2])\nfew\t(1, 9, 9, [9, 9])\n")

    def test_values_beyond_the_memory_limit_spill_and_stay_a_sequence(self):
        source = """
        import sys
        def reduce(key, values, context):
            n = len(values)
            assert key != "k" or sum(values) == sum(values) == n * (n - 1) // 2
            context.write(key, (type(values).__name__, n, values[0], values[-1], values[n // 2]))
        """
        stdin = b"".join(b"k\t%d\n" % i for i in range(20000)) + b"z\t7\n"
        env = dict(os.environ, POLYMR_HELPER_VALUES_MEMORY="4096")
        p = subprocess.run(self.args("reduce", self.script(source)), input=stdin,
                           capture_output=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode(),
                         "k\t('SpilledValues', 20000, 0, 19999, 10000)\nz\t('list', 1, 7, 7, 7)\n")

    def test_reduce_exception_exits_1(self):
        source = """
        def reduce(key, values):
            return 1 / 0
        """
        rc, _, err = self.run_helper("reduce", source, b"a 1\n", "--separator", " ")
        self.assertEqual(rc, 1)
        self.assertIn("ZeroDivisionError", err)


class OrjsonFallbackTest(HelperTest):
    """With orjson importable the helper parses with it, and falls back to json for a record
    orjson refuses or would read differently: the values are exactly json.loads'."""

    RECORDS = [
        b'{"s": "lone \\ud800 surrogate", "t": "pair \\ud83d\\ude00"}',
        b'{"n": 18446744073709551616, "m": -9223372036854775809}',
        b'[1180591620717411303424, 9223372036854775807, 1.5, -0.0, 1e300]',
        b'{"nan": NaN, "inf": -Infinity}',
        b'"\\u00e9t\\u00e9 \xc3\xa9"',
        b'{"n": 123, "s": "ordinary"}',
    ]
    MAPPER = """
    import sys
    print("orjson loaded:", "orjson" in sys.modules)

    def mapper(uuid, file, js):
        return "%s %r" % (uuid, js)
    """
    REDUCER = """
    def reduce(key, values, context):
        context.write(key, repr([(type(v).__name__, v) for v in values]))
    """

    def helper(self, python, role, source, stdin, env):
        env = dict(os.environ, **env)
        env.pop("PYTHONUNBUFFERED", None)
        p = subprocess.run([python, HELPER, "--role", role, "--script", self.script(source), "--"],
                           input=stdin, capture_output=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout, p.stderr.decode()

    def expected(self):
        mapped = b"".join(b"u%d %s\n" % (i, repr(json.loads(r)).encode("utf-8", "surrogatepass")
                                          .replace(b"\xed\xa0\x80", b"\xef\xbf\xbd"))
                          for i, r in enumerate(self.RECORDS))
        reduced = ("k\t%r\n" % [(type(v).__name__, v) for v in map(json.loads, self.RECORDS)])
        return mapped, reduced.encode("utf-8", "surrogatepass").replace(b"\xed\xa0\x80", b"\xef\xbf\xbd")

    def run_both(self, python, env):
        stdin = F(0, "f") + b"".join(b"u%d\t%s\n" % (i, r) for i, r in enumerate(self.RECORDS))
        mapped, err = self.helper(python, "map", self.MAPPER, stdin, env)
        reduce_in = b"".join(b"k\t%s\n" % r for r in self.RECORDS)
        reduced, _ = self.helper(python, "reduce", self.REDUCER, reduce_in, env)
        return mapped, reduced, err

    def test_orjson_gives_exactly_what_json_loads_gives(self):
        skip_without_orjson(self)
        mapped, reduced, err = self.run_both(ORJSON_PYTHON, {})
        self.assertIn("orjson loaded: True", err)
        self.assertEqual((mapped, reduced), self.expected())

    def test_without_orjson_the_output_is_identical(self):
        for python in [sys.executable] + ([ORJSON_PYTHON] if ORJSON_PYTHON else []):
            mapped, reduced, err = self.run_both(python, {"POLYMR_HELPER_ORJSON": "0"})
            self.assertIn("orjson loaded: False", err)
            self.assertEqual((mapped, reduced), self.expected())

# --- the shared conformance cases ---------------------------------------------------------

def _text(x):
    return "".join(line + "\n" for line in x) if isinstance(x, list) else x


def run_case(test, case, python, env_extra):
    """Runs one case of cases.json with `python` and checks stdout, stderr and the exit code."""
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "job.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write("\n".join(case["python"]))
        argv = [python, HELPER, "--role", case["role"], "--script", script]
        if case["api"] != "auto":
            argv += ["--api", case["api"]]
        env = dict(os.environ)
        env.pop("PYTHONUNBUFFERED", None)
        env.update(case.get("env", {}))
        env.update(env_extra)
        p = subprocess.run(argv + case["args"] + ["--"], input=_text(case["stdin"]).encode("utf-8"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=d,
                           timeout=60)
    out = p.stdout.decode("utf-8", "surrogateescape")
    err = p.stderr.decode("utf-8", "surrogateescape")
    test.assertEqual(p.returncode, case["exit"], err)
    test.assertEqual(out, _text(case["stdout"]), err)
    lines = err.split("\n")
    if lines[-1] == "":
        lines.pop()

    def matches(want, line):
        if isinstance(want, str):
            return want == line
        return re.fullmatch(want["re"], line) is not None

    wanted = case["stderr"]
    if case.get("stderr_partial"):
        i = 0
        for line in lines:
            if i < len(wanted) and matches(wanted[i], line):
                i += 1
        test.assertEqual(i, len(wanted), "stderr lacks %r:\n%s" % (wanted[i:], err))
    else:
        test.assertEqual(len(lines), len(wanted), err)
        for want, line in zip(wanted, lines):
            test.assertTrue(matches(want, line), "stderr line %r is not %r" % (line, want))


def _load_cases():
    with open(CASES, encoding="utf-8") as f:
        return json.load(f)["cases"]


class ConformanceTest(unittest.TestCase):
    """cases.json with this interpreter and json (POLYMR_HELPER_ORJSON=0)."""


class ConformanceOrjsonTest(unittest.TestCase):
    """cases.json again with an interpreter that imports orjson: the same output."""

    def setUp(self):
        skip_without_orjson(self)


def _add_cases():
    for i, case in enumerate(_load_cases()):
        if case["python"] is None:
            continue
        slug = re.sub(r"[^a-z0-9]+", "_", case["name"].lower()).strip("_")[:60]
        name = "test_%02d_%s" % (i, slug)

        def plain(self, case=case):
            run_case(self, case, sys.executable, {"POLYMR_HELPER_ORJSON": "0"})

        def fast(self, case=case):
            run_case(self, case, ORJSON_PYTHON, {})

        setattr(ConformanceTest, name, plain)
        setattr(ConformanceOrjsonTest, name, fast)


_add_cases()


if __name__ == "__main__":
    unittest.main()
