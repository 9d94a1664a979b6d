// Tests of polymr_helper.js, run as the driver runs it: a real subprocess, real user scripts.
//
//   node --test helpers/js/test_polymr_helper.js        (from the repository root; Node 20's
//   directory discovery does not pick up the `test_` prefix)
//
// The conformance cases in helpers/conformance/cases.json are run here and by the Python suite.
'use strict';

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const HELPER = path.join(__dirname, 'polymr_helper.js');

let dir;
let counter = 0;
before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'polymr-helper-js-')); });
after(() => { fs.rmSync(dir, { recursive: true, force: true }); });

/** A file control line. */
function F(index, name, dims = '[]') {
  return `\0F\t${index}\t${dims}\t${name}\n`;
}

function script(source, name) {
  const file = path.join(dir, name || `job${++counter}.js`);
  fs.writeFileSync(file, source);
  return file;
}

function args(role, file, extra = [], user = []) {
  return [HELPER, '--role', role, '--script', file, ...extra, '--', ...user];
}

function run(role, source, stdin, extra = [], user = []) {
  const p = spawnSync(process.execPath, args(role, script(source), extra, user), {
    input: stdin, cwd: dir, timeout: 60000, maxBuffer: 1 << 28,
  });
  return { rc: p.status, out: p.stdout.toString(), err: p.stderr.toString() };
}

function ok(role, source, stdin, extra = [], user = []) {
  const r = run(role, source, stdin, extra, user);
  assert.strictEqual(r.rc, 0, r.err);
  return r;
}

const LEGACY_MAPPER = `
function mapper(uuid, file, js) { return js.info.OS + ' ' + uuid + ' ' + file; }
module.exports = { mapper };
`;

describe('map', () => {
  test('legacy mapper gets uuid, file and parsed JSON', () => {
    const stdin = F(0, 'saved-session/Firefox/a.log', '["saved-session","Firefox"]') +
      'u-1\t{"info":{"OS":"WINNT"}}\n' +
      'u-2\t{"info":{"OS":"Linux"}}\n';
    const { out, err } = ok('map', LEGACY_MAPPER, stdin);
    assert.strictEqual(out, 'WINNT u-1 saved-session/Firefox/a.log\nLinux u-2 saved-session/Firefox/a.log\n');
    assert.strictEqual(err, '');
  });

  test('exports.mapper and legacy return values', () => {
    const source = 'exports.mapper = function (uuid, file, js) { return js; };\n';
    const stdin = F(0, 'f') + 'a\t"x\\n"\nb\tnull\nc\t""\nd\t"y"\ne\t7\nf\t0\n';
    assert.strictEqual(ok('map', source, stdin).out, 'x\ny\n7\n0\n');
  });

  test('telemetry map writes through context', () => {
    const source = `
      exports.map = (key, dims, value, context) => {
        if (typeof value !== 'string') throw new Error('raw text expected');
        context.write(dims[0], { uuid: key, raw: value });
      };`;
    const stdin = F(0, 'f', '["saved-session","Firefox"]') + 'u-1\t{"a": 1}\n';
    assert.strictEqual(ok('map', source, stdin).out, 'saved-session\t{"uuid":"u-1","raw":"{\\"a\\": 1}"}\n');
  });

  test('a key with the separator is tagged JSON, not an error', () => {
    const source = 'exports.map = (k, d, v, context) => { context.write("a\\tb", 1); context.write(["os", 3], [1, [2]]); };\n';
    assert.strictEqual(ok('map', source, F(0, 'f') + 'u\t{}\n').out, '\x01"a\\tb"\t1\n\x01["os",3]\t[1,[2]]\n');
  });

  test('invalid records are reported with file index and line', () => {
    const source = 'exports.mapper = (uuid, file, js) => uuid + " ok";\n';
    const stdin = F(0, 'first') +
      'a\t{}\n' +
      'b\t{not json\n' + // line 2
      '\n' + // line 3: empty, skipped silently
      'no tab here\n' + // line 4
      F(7, 'second') +
      'c\t[1,\n' + // line 1 of file 7
      'd\t{}\n' +
      'e\t{"a":\n'; // line 3
    const { out, err } = ok('map', source, stdin);
    assert.strictEqual(out, 'a ok\nd ok\n');
    const reports = err.split('\n').filter((l) => l.startsWith('polymr:invalid:'));
    assert.deepStrictEqual(reports.map((r) => r.split(':').slice(2, 4)), [['0', '2'], ['0', '4'], ['7', '1'], ['7', '3']]);
    assert.match(reports[0], /invalid JSON/);
    assert.match(reports[1], /no TAB/);
    assert.strictEqual(err.trim().split('\n').length, 4, err);
  });

  test('escaped records', () => {
    const source = 'exports.mapper = (uuid, file, js) => JSON.stringify(uuid) + " " + js;\n';
    const stdin = F(0, 'f') + '\0=\0abc\t1\n' + '\0=plain\t2\n' + '\0=bad\n';
    const { out, err } = ok('map', source, stdin);
    assert.strictEqual(out, '"\\u0000abc" 1\n"plain" 2\n');
    assert.match(err, /polymr:invalid:0:3:/);
  });

  test('CRLF line endings', () => {
    const stdin = F(0, 'f') + 'u1\t{"a":1}\r\n\r\nu2\t[2]\r\n';
    const telemetry = 'exports.map = (key, dims, value, context) => context.write(key, value);\n';
    assert.strictEqual(ok('map', telemetry, stdin).out, 'u1\t"{\\"a\\":1}"\nu2\t"[2]"\n');
    const legacy = 'exports.mapper = (uuid, file, js) => uuid + " " + JSON.stringify(js);\n';
    assert.strictEqual(ok('map', legacy, stdin).out, 'u1 {"a":1}\nu2 [2]\n');
  });

  test('lines format', () => {
    const legacy = 'exports.mapper = (uuid, file, line) => `${uuid} ${file} ${line}`;\n';
    const stdin = F(0, 'logs/a.txt') + 'first line\r\n\nsecond\tline\n' + 'last';
    assert.strictEqual(ok('map', legacy, stdin, ['--format', 'lines']).out,
      'null logs/a.txt first line\nnull logs/a.txt second\tline\nnull logs/a.txt last\n');
    const telemetry = 'exports.map = (key, dims, value, context) => context.write(String(key), [dims, value]);\n';
    assert.strictEqual(ok('map', telemetry, F(0, 'x', '["a"]') + 'one\n', ['--format', 'lines']).out,
      'null\t[["a"],"one"]\n');
  });

  test('--function and --api override', () => {
    const source = 'exports.count = (...args) => `${args.length} args`;\n';
    const stdin = F(0, 'f') + 'u\t{}\n';
    assert.strictEqual(ok('map', source, stdin, ['--function', 'count', '--api', 'legacy']).out, '3 args\n');
  });

  test('a module that exports the function itself', () => {
    const source = 'module.exports = function mapper(uuid, file, js) { return uuid; };\n';
    assert.strictEqual(ok('map', source, F(0, 'f') + 'u\t{}\n').out, 'u\n');
  });

  test('a missing function fails', () => {
    const r = run('map', 'exports.x = 1;\n', '');
    assert.strictEqual(r.rc, 1);
    assert.match(r.err, /`mapper`, `map`/);
  });

  test('a user exception exits 1 with the stack on stderr', () => {
    const source = `
      function inner(js) { throw new Error('boom ' + js); }
      exports.mapper = function mapper(uuid, file, js) { return inner(js); };`;
    const r = run('map', source, F(0, 'f') + 'u\t42\n');
    assert.strictEqual(r.rc, 1);
    assert.match(r.err, /Error: boom 42/);
    assert.match(r.err, /at inner \(/);
    assert.doesNotMatch(r.err, /polymr_helper\.js/);
  });

  test('user arguments reach process.argv and console.log goes to stderr', () => {
    const source = `
      console.log('argv', JSON.stringify(process.argv.slice(2)));
      const SCRIPT = process.argv[1];
      exports.mapper = (uuid, file, js) => { console.log('log line'); process.stdout.write('also log\\n'); return SCRIPT; };`;
    const file = script(source, 'args.js');
    const p = spawnSync(process.execPath, args('map', file, [], ['--top', '5', '--']), { input: F(0, 'f') + 'u\t{}\n' });
    assert.strictEqual(p.status, 0, p.stderr.toString());
    assert.strictEqual(p.stdout.toString(), file + '\n');
    const err = p.stderr.toString();
    assert.match(err, /argv \["--top","5","--"\]/);
    assert.match(err, /log line/);
    assert.match(err, /also log/);
  });

  test('sibling modules require', () => {
    script('exports.FACTOR = 3;\n', 'shared_stuff.js');
    const source = "const { FACTOR } = require('./shared_stuff');\nexports.mapper = (u, f, js) => String(js * FACTOR);\n";
    assert.strictEqual(ok('map', source, F(0, 'f') + 'u\t2\n').out, '6\n');
  });

  test('a closed stdout exits quietly', async () => {
    const file = script('exports.mapper = () => "x".repeat(1000);\n');
    const p = spawn(process.execPath, args('map', file), { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.stdin.on('error', () => {});
    p.stdout.destroy();
    p.stdin.end(F(0, 'f') + 'u\t{}\n'.repeat(200000));
    const code = await new Promise((resolve) => p.on('close', resolve));
    assert.strictEqual(code, 1);
    assert.strictEqual(err, '');
  });

  test('large input across many chunks, multibyte text split anywhere', () => {
    const source = 'exports.mapper = (uuid, file, js) => uuid + " " + js.s;\n';
    const n = 50000;
    let stdin = F(0, 'f');
    const expected = [];
    for (let i = 0; i < n; i++) {
      stdin += `${i}\t{"s":"é€😀${i}"}\n`;
      expected.push(`${i} é€😀${i}`);
    }
    assert.deepStrictEqual(ok('map', source, stdin).out.split('\n').slice(0, -1), expected);
  });

  test('a record longer than the read buffer', () => {
    const source = 'exports.mapper = (uuid, file, js) => uuid + " " + js.length;\n';
    const big = 'x'.repeat(300000);
    assert.strictEqual(ok('map', source, F(0, 'f') + `a\t"${big}"\nb\t"y"`).out, 'a 300000\nb 1\n');
  });
});

/** Resolves with the next stderr line of a child, or null after `ms`. */
function nextLine(stream, state, ms) {
  return new Promise((resolve) => {
    const check = () => {
      const nl = state.buf.indexOf('\n');
      if (nl === -1) return false;
      const line = state.buf.slice(0, nl + 1);
      state.buf = state.buf.slice(nl + 1);
      clearTimeout(timer);
      stream.off('data', onData);
      resolve(line);
      return true;
    };
    const onData = (d) => { state.buf += d; check(); };
    const timer = setTimeout(() => { stream.off('data', onData); resolve(null); }, ms);
    if (!check()) stream.on('data', onData);
  });
}

describe('reduce', () => {
  test('legacy reduce with a space separator', () => {
    const source = 'exports.reduce = (key, values) => `${key} ${values.reduce((a, v) => a + Number(v || 0), 0)}`;\n';
    const stdin = 'Darwin 1\nLinux 1\nLinux 2\n\nWINNT 1\r\nWINNT 1\nWINNT 1\nlonely\n';
    assert.strictEqual(ok('reduce', source, stdin, ['--separator', ' ']).out, 'Darwin 1\nLinux 3\nWINNT 3\nlonely 0\n');
  });

  test('legacy values are an array of raw strings', () => {
    const source = 'exports.reduce = (key, values) => key + "=" + JSON.stringify(values);\n';
    assert.strictEqual(ok('reduce', source, 'k {"a": 1}\nk two words\n', ['--separator', ' ']).out,
      'k=["{\\"a\\": 1}","two words"]\n');
  });

  const TELEMETRY_REDUCER = `
    module.exports = {
      setup_reduce(context) { context.write('setup', null); },
      reduce(key, values, context) {
        let total = 0;
        const kinds = [];
        for (const v of values) {
          kinds.push(Array.isArray(v) ? 'array' : typeof v);
          if (typeof v === 'number') total += v;
        }
        context.write(key, { total, kinds });
      },
    };`;

  test('telemetry reduce gets JSON-decoded values', () => {
    const stdin = 'a\t1\na\t2\nb\t{"x":1}\nb\t5\nc\tnot json\nd\n';
    assert.strictEqual(ok('reduce', TELEMETRY_REDUCER, stdin).out,
      'setup\tNone\n' +
      "a\t{'total': 3, 'kinds': ['number', 'number']}\n" +
      "b\t{'total': 5, 'kinds': ['object', 'number']}\n" +
      "c\t{'total': 0, 'kinds': ['string']}\n" +
      "d\t{'total': 0, 'kinds': ['string']}\n");
  });

  test('combine prefers combine and skips setup_reduce', () => {
    const source = `
      exports.setup_reduce = (context) => context.write('setup', 1);
      exports.combine = (key, values, context) => { let s = 0; for (const v of values) s += v; context.write(key, s); };
      exports.reduce = (key, values, context) => { throw new Error('combine must be used'); };`;
    assert.strictEqual(ok('combine', source, 'a\t1\na\t2\nb\t3\n').out, 'a\t3\nb\t3\n');
  });

  test('combine falls back to reduce', () => {
    const source = 'exports.reduce = (key, values, context) => context.write(key, [...values]);\n';
    assert.strictEqual(ok('combine', source, 'a\t1\na\t[2]\n').out, 'a\t[1,[2]]\n');
  });

  test('values are an array in input order', () => {
    const source = `
      exports.reduce = (key, values, context) => {
        context.write(key, [values.length, values[0], values[values.length - 1], [...values, ...values]]);
      };`;
    const stdin = 'all\t3\nall\t1\nall\t2\nfew\t9\n';
    assert.strictEqual(ok('reduce', source, stdin).out, 'all\t[3, 3, 2, [3, 1, 2, 3, 1, 2]]\nfew\t[1, 9, 9, [9, 9]]\n');
  });

  test('values beyond the memory limit spill to disk and stay a read-only sequence', () => {
    const source = `
      exports.reduce = (key, values, context) => {
        let pushed = 'yes';
        try { values.push(1); } catch (e) { pushed = e.constructor.name; }
        const n = values.length;
        context.write(key, [Array.isArray(values), pushed, n, values[0], values.at(-1), values.reduce((a, v) => a + v, 0)]);
      };`;
    const file = script(source);
    const stdin = Array.from({ length: 20000 }, (_, i) => `k\t${i}\n`).join('') + 'z\t7\n';
    const p = spawnSync(process.execPath, args('reduce', file), {
      input: stdin, env: { ...process.env, POLYMR_HELPER_VALUES_MEMORY: '4096' }, timeout: 60000,
    });
    assert.strictEqual(p.status, 0, p.stderr.toString());
    assert.strictEqual(p.stdout.toString(),
      "k\t[False, 'TypeError', 20000, 0, 19999, 199990000]\nz\t[True, 'yes', 2, 7, 1, 8]\n");
  });

  test('spilled values with multibyte text read back whole across read chunks', () => {
    const source = `
      exports.reduce = (key, values, context) => {
        let n = 0;
        let bad = 0;
        for (const v of values) { if (v !== 'é€😀'.repeat(7) + n) bad++; n++; }
        context.write(key, [n, bad, values[n - 1] === 'é€😀'.repeat(7) + (n - 1)]);
      };`;
    const file = script(source);
    const stdin = Array.from({ length: 30000 }, (_, i) => `k\t"${'é€😀'.repeat(7)}${i}"\n`).join('');
    const p = spawnSync(process.execPath, args('reduce', file), {
      input: stdin, env: { ...process.env, POLYMR_HELPER_VALUES_MEMORY: '10000' }, timeout: 60000,
    });
    assert.strictEqual(p.status, 0, p.stderr.toString());
    assert.strictEqual(p.stdout.toString(), 'k\t[30000, 0, True]\n');
  });

  test('a reduce exception exits 1', () => {
    const r = run('reduce', 'exports.reduce = (key, values) => { null.x; };\n', 'a 1\n', ['--separator', ' ']);
    assert.strictEqual(r.rc, 1);
    assert.match(r.err, /TypeError/);
  });
});

// --- the shared conformance cases -------------------------------------------------------------

const CASES = path.join(__dirname, '..', 'conformance', 'cases.json');

function caseText(x) {
  return Array.isArray(x) ? x.map((l) => l + '\n').join('') : x;
}

function lineMatches(want, line) {
  if (typeof want === 'string') return want === line;
  return new RegExp('^(?:' + want.re + ')$', 'u').test(line);
}

describe('conformance (helpers/conformance/cases.json)', () => {
  const cases = JSON.parse(fs.readFileSync(CASES, 'utf8')).cases;
  cases.forEach((c, i) => {
    if (c.js === null) return;
    test(`${String(i).padStart(2, '0')} ${c.name}`, () => {
      const d = fs.mkdtempSync(path.join(dir, 'case-'));
      const file = path.join(d, 'job.js');
      fs.writeFileSync(file, c.js.join('\n'));
      const argv = [HELPER, '--role', c.role, '--script', file];
      if (c.api !== 'auto') argv.push('--api', c.api);
      const p = spawnSync(process.execPath, [...argv, ...c.args, '--'], {
        input: Buffer.from(caseText(c.stdin), 'utf8'), cwd: d, timeout: 60000,
        env: { ...process.env, ...(c.env || {}) },
      });
      const out = p.stdout.toString('utf8');
      const err = p.stderr.toString('utf8');
      assert.strictEqual(p.status, c.exit, err);
      assert.strictEqual(out, caseText(c.stdout), err);
      const lines = err.split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      if (c.stderr_partial) {
        let k = 0;
        for (const line of lines) if (k < c.stderr.length && lineMatches(c.stderr[k], line)) k++;
        assert.strictEqual(k, c.stderr.length, `stderr lacks ${JSON.stringify(c.stderr.slice(k))}:\n${err}`);
      } else {
        assert.strictEqual(lines.length, c.stderr.length, err);
        c.stderr.forEach((want, k) => assert.ok(lineMatches(want, lines[k]), `stderr line ${JSON.stringify(lines[k])} is not ${JSON.stringify(want)}`));
      }
    });
  });
});
