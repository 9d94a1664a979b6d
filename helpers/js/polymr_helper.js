#!/usr/bin/env node
// polymr's Node helper: loads a user's plain functions and runs them over stdin.
//
//   node polymr_helper.js --role ROLE --script PATH [--function NAME]
//        [--api auto|legacy|telemetry] [--format telemetry|lines] [--separator SEP] -- [USER ARGS...]
//
// helpers/PROTOCOL.md is the contract. Built-in modules only, one CommonJS file: the driver
// embeds it and writes it alone into a temporary directory.
//
// The telemetry API follows mozilla/telemetry-server's job.py as the Python helper does, so
// that a job ported line by line behaves the same (helpers/conformance/cases.json holds the
// cases both helpers must pass). I/O is synchronous on purpose (fs.readSync on fd 0,
// fs.writeSync on fd 1): a blocking write into a full pipe *is* backpressure, and user
// functions are called synchronously. Records are split from 64 KiB chunks by hand (readline
// is slow) and output leaves in ~64 KiB writes.
'use strict';

const fs = require('fs');
const path = require('path');

const USAGE =
  'usage: polymr_helper.js --role map|combine|reduce --script PATH [--function NAME]\n' +
  '       [--api auto|legacy|telemetry] [--format telemetry|lines] [--separator SEP] -- [USER ARGS...]\n';
const OUT_LIMIT = 1 << 16;
const EPIPE_EXIT = 1;

class UsageError extends Error {}
class NoFunction extends Error {}

function parseArgs(argv) {
  const cut = argv.indexOf('--');
  const own = cut === -1 ? argv : argv.slice(0, cut);
  const user = cut === -1 ? [] : argv.slice(cut + 1);
  const opts = { role: null, script: null, function: null, api: 'auto', format: 'telemetry', separator: '\t', 'map-only': false };
  const choices = { role: ['map', 'combine', 'reduce'], api: ['auto', 'legacy', 'telemetry'], format: ['telemetry', 'lines'] };
  for (let i = 0; i < own.length; i++) {
    const arg = own[i];
    if (arg === '-h' || arg === '--help') {
      logLine(USAGE);
      process.exit(0);
    }
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (user arguments go after \`--\`)`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    if (!Object.prototype.hasOwnProperty.call(opts, name)) throw new UsageError(`unknown option --${name}`);
    let value;
    if (name === 'map-only') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      opts[name] = true;
      continue;
    }
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      if (++i >= own.length) throw new UsageError(`--${name} needs a value`);
      value = own[i];
    }
    if (choices[name] && !choices[name].includes(value)) {
      throw new UsageError(`--${name} must be one of ${choices[name].join('|')}, not ${JSON.stringify(value)}`);
    }
    opts[name] = value;
  }
  if (opts.role === null) throw new UsageError('--role is required');
  if (opts.script === null) throw new UsageError('--script is required');
  const sep = opts.separator;
  if (!sep || sep.includes('\n') || sep.includes('\r')) {
    throw new UsageError('--separator must be non-empty and contain no newline');
  }
  return { opts, user };
}

// --- raw I/O ---------------------------------------------------------------------------------

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleep(ms) {
  Atomics.wait(sleepCell, 0, 0, ms);
}

function readSome(fd, buf) {
  for (;;) {
    try {
      return fs.readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      // A non-blocking stdin (inherited O_NONBLOCK): wait for data instead of spinning.
      if (e.code === 'EAGAIN') { sleep(1); continue; }
      if (e.code === 'EOF') return 0;
      throw e;
    }
  }
}

function stdoutClosed() {
  process.exit(EPIPE_EXIT);
}

function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN') { sleep(1); continue; }
      if (e.code === 'EPIPE') {
        if (fd === 1) stdoutClosed();
        return; // nobody reads stderr any more: drop the log line
      }
      throw e;
    }
  }
}

/** A line for stderr, written at once so that it interleaves whole with user logs. */
function logLine(text) {
  writeAll(2, Buffer.from(text, 'utf8'));
}

/** Text for stdout, gathered into ~64 KiB writes. */
class Output {
  constructor(fd) {
    this.fd = fd;
    this.text = '';
  }
  write(s) {
    this.text += s;
    if (this.text.length >= OUT_LIMIT) this.flush();
  }
  flush() {
    if (this.text.length) {
      const buf = Buffer.from(this.text, 'utf8');
      this.text = '';
      writeAll(this.fd, buf);
    }
  }
}

/** stdin as strings of whole lines (the last one may lack its '\n'); null at the end. */
class Input {
  constructor(fd) {
    this.fd = fd;
    this.buf = Buffer.allocUnsafe(1 << 16);
    this.carry = []; // bytes of an unfinished line, kept as Buffers until its '\n' arrives
    this.eof = false;
  }
  chunk() {
    const buf = this.buf;
    while (!this.eof) {
      const n = readSome(this.fd, buf);
      if (n === 0) {
        this.eof = true;
        if (this.carry.length) {
          const s = Buffer.concat(this.carry).toString('utf8');
          this.carry = [];
          return s;
        }
        return null;
      }
      const last = buf.lastIndexOf(10, n - 1);
      if (last === -1) {
        this.carry.push(Buffer.from(buf.subarray(0, n)));
        continue;
      }
      let s;
      if (this.carry.length) {
        this.carry.push(buf.subarray(0, last + 1));
        s = Buffer.concat(this.carry).toString('utf8');
        this.carry = [];
      } else {
        s = buf.toString('utf8', 0, last + 1);
      }
      if (last + 1 < n) this.carry.push(Buffer.from(buf.subarray(last + 1, n)));
      return s;
    }
    return null;
  }
}

/** One line at a time (without '\n'), over Input's chunks; null at the end. */
class Lines {
  constructor(input) {
    this.input = input;
    this.s = '';
    this.pos = 0;
  }
  next() {
    for (;;) {
      const s = this.s;
      if (this.pos < s.length) {
        let nl = s.indexOf('\n', this.pos);
        if (nl === -1) nl = s.length;
        const line = s.slice(this.pos, nl);
        this.pos = nl + 1;
        return line;
      }
      const c = this.input.chunk();
      if (c === null) return null;
      this.s = c;
      this.pos = 0;
    }
  }
}

// --- between stages: job.py's marshal, as JSON (PROTOCOL.md, "Between stages") -------------
//
// The same text as the Python helper writes, byte for byte: compact JSON with non-ASCII
// escaped (Python's json.dumps default), and TAG + JSON with one-key wrapper objects for what
// plain JSON cannot say. Decoded wrappers become Tuple (an Array), Set, FrozenSet, Map and
// Buffer, so that a ported job sees what the Python job would and writes the same text.

const TAG = '\x01';
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** A Python tuple: an Array that prints as `(a, b)` and travels as {"\u0001t": [...]}. */
class Tuple extends Array {
  static get [Symbol.species]() { return Array; }
}
/** A Python frozenset. */
class FrozenSet extends Set {}

function tuple(items) {
  const t = new Tuple();
  for (const x of items) t.push(x);
  return t;
}

const NON_ASCII = /[\u007f-\uffff]/;
const NON_ASCII_G = /[\u007f-\uffff]/g;
/** JSON text with everything outside ASCII's printable range escaped, as Python writes it. */
function ascii(json) {
  return NON_ASCII.test(json)
    ? json.replace(NON_ASCII_G, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'))
    : json;
}

/** Whether plain JSON.stringify would lose or refuse something of `v`. */
function special(v) {
  if (typeof v === 'bigint') return true;
  if (v === null || typeof v !== 'object') return false;
  if (v instanceof Tuple || v instanceof Set || v instanceof Map || Buffer.isBuffer(v)) return true;
  if (typeof v.toJSON === 'function') return false;
  if (Array.isArray(v)) {
    for (const x of v) if (special(x)) return true;
    return false;
  }
  for (const k of Object.keys(v)) if (k.charCodeAt(0) === 1 || special(v[k])) return true;
  return false;
}

/** JSON of `v` with the wrappers; `state.tagged` tells whether one was written. In a key
 * (`asKey`) tuples are plain arrays, as the Python helper writes them. */
function dump(v, state, asKey) {
  if (typeof v === 'bigint') return v.toString();
  if (v === null || typeof v !== 'object' || typeof v.toJSON === 'function') {
    const s = JSON.stringify(v);
    return s === undefined ? 'null' : s;
  }
  if (Buffer.isBuffer(v)) {
    state.tagged = true;
    return '{"\\u0001b":' + JSON.stringify(v.toString('latin1')) + '}';
  }
  if (v instanceof Set) {
    state.tagged = true;
    const items = [...v].map((x) => dump(x, state, asKey)).join(',');
    return `{"\\u0001${v instanceof FrozenSet ? 'f' : 's'}":[${items}]}`;
  }
  if (v instanceof Map) {
    state.tagged = true;
    const items = [...v].map(([k, x]) => '[' + dump(k, state, true) + ',' + dump(x, state, asKey) + ']');
    return '{"\\u0001d":[' + items.join(',') + ']}';
  }
  if (Array.isArray(v)) {
    const items = '[' + v.map((x) => dump(x, state, asKey)).join(',') + ']';
    if (v instanceof Tuple && !asKey) {
      state.tagged = true;
      return '{"\\u0001t":' + items + '}';
    }
    return items;
  }
  const keys = Object.keys(v).filter((k) => v[k] !== undefined && typeof v[k] !== 'function');
  if (keys.some((k) => k.charCodeAt(0) === 1)) {
    // A key that would read as a wrapper: the object travels as a tagged dict.
    state.tagged = true;
    return '{"\\u0001d":[' + keys.map((k) => '[' + JSON.stringify(k) + ',' + dump(v[k], state, asKey) + ']').join(',') + ']}';
  }
  return '{' + keys.map((k) => JSON.stringify(k) + ':' + dump(v[k], state, asKey)).join(',') + '}';
}

/** A value as shuffle text. */
function encodeValue(value) {
  if (!special(value)) {
    const s = JSON.stringify(value);
    return s === undefined ? 'null' : ascii(s);
  }
  const state = { tagged: false };
  const s = ascii(dump(value, state, false));
  return state.tagged ? TAG + s : s;
}

/** A key as shuffle text: a plain string as it is, anything else TAG + JSON. */
function encodeKey(key, sep) {
  if (typeof key === 'string' && key.charCodeAt(0) !== 1 && !key.includes(sep) &&
      !key.includes('\n') && !key.includes('\r')) {
    return key;
  }
  const text = TAG + ascii(typeof key === 'string' ? JSON.stringify(key) : dump(key, { tagged: false }, true));
  if (text.includes(sep)) {
    throw new Error(`context.write: key ${JSON.stringify(text.slice(1))} contains the separator`);
  }
  return text;
}

/** Integers JSON.parse would round (beyond 2^53) replaced by {"\u0001i": "digits"}, so that
 * they come back as BigInt, as Python's json gives an exact int. null when there are none. */
function protectBigInts(text) {
  let out = '';
  let last = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) { // a string: skip it
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 92) i += 2;
        else { i++; if (d === 34) break; }
      }
      continue;
    }
    if (c === 45 || (c >= 48 && c <= 57)) {
      const start = i;
      if (c === 45) i++;
      const digits = i;
      while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
      const d = text.charCodeAt(i);
      if (d !== 46 && d !== 101 && d !== 69 && i - digits >= 16 && text.charCodeAt(digits) !== 48) {
        const lit = text.slice(start, i);
        const b = BigInt(lit);
        if (b > MAX_SAFE || b < -MAX_SAFE) {
          out += text.slice(last, start) + '{"\\u0001i":"' + lit + '"}';
          last = i;
        }
      }
      while (i < n && /[0-9eE+.-]/.test(text[i])) i++;
      continue;
    }
    i++;
  }
  return last === 0 ? null : out + text.slice(last);
}

function hashable(x) {
  return Array.isArray(x) && !(x instanceof Tuple) ? tuple(x.map(hashable)) : x;
}

function untag(k, v) {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0].charCodeAt(0) === 1) {
      const x = v[keys[0]];
      switch (keys[0]) {
        case '\x01t': if (Array.isArray(x)) return tuple(x); break;
        case '\x01s': if (Array.isArray(x)) return new Set(x.map(hashable)); break;
        case '\x01f': if (Array.isArray(x)) return new FrozenSet(x.map(hashable)); break;
        case '\x01b': if (typeof x === 'string') return Buffer.from(x, 'latin1'); break;
        case '\x01d': if (Array.isArray(x)) return new Map(x.map((p) => [hashable(p[0]), p[1]])); break;
        case '\x01i': if (typeof x === 'string') return BigInt(x); break;
        default:
      }
    }
  }
  return v;
}

const LONG_DIGITS = /\d{16}/;
/** JSON text → value, with integers beyond 2^53 as BigInt and, when `tagged`, the wrappers
 * restored. Throws SyntaxError as JSON.parse does. */
function parseJSON(text, tagged) {
  const safe = text.length > 15 && LONG_DIGITS.test(text) ? protectBigInts(text) : null;
  if (safe === null && !tagged) return JSON.parse(text);
  return JSON.parse(safe === null ? text : safe, untag);
}

/** A raw shuffle value → what was written: JSON, tagged JSON, or the text itself when it is
 * neither (a native mapper's output, the empty value). */
function decodeValue(raw) {
  try {
    return raw.charCodeAt(0) === 1 ? parseJSON(raw.slice(1), true) : parseJSON(raw, false);
  } catch (e) {
    return raw;
  }
}

/** A raw shuffle key → the key written: a tagged key's arrays are tuples again. */
function decodeKey(raw) {
  if (raw.charCodeAt(0) === 1) {
    try {
      return hashable(parseJSON(raw.slice(1), true));
    } catch (e) {
      // not ours: the text itself
    }
  }
  return raw;
}

// --- user code -------------------------------------------------------------------------------

function asText(r) {
  if (r === undefined || r === null) return '';
  if (typeof r === 'string') return r;
  if (typeof r.then === 'function') {
    throw new TypeError('the function returned a Promise; polymr calls user functions synchronously');
  }
  if (Buffer.isBuffer(r)) return r.toString('utf8');
  return String(r);
}

function makeContext(out, sep) {
  return {
    write(key, value) {
      out.write(encodeKey(key, sep) + sep + encodeValue(value) + '\n');
    },
  };
}

// Python's isprintable() is false for these (repr escapes them).
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

function hex(n, width) {
  return n.toString(16).padStart(width, '0');
}

/** Python's repr() of a str. */
function pyStrRepr(v) {
  const q = v.includes("'") && !v.includes('"') ? '"' : "'";
  let r = '';
  for (const c of v) {
    const n = c.codePointAt(0);
    if (c === '\\' || c === q) r += '\\' + c;
    else if (c === '\n') r += '\\n';
    else if (c === '\r') r += '\\r';
    else if (c === '\t') r += '\\t';
    else if (n < 0x7f && n >= 0x20) r += c;
    else if (c !== ' ' && UNPRINTABLE.test(c)) {
      r += n < 0x100 ? '\\x' + hex(n, 2) : n < 0x10000 ? '\\u' + hex(n, 4) : '\\U' + hex(n, 8);
    } else r += c;
  }
  return q + r + q;
}

/** Python's repr() of bytes. */
function pyBytesRepr(b) {
  const q = b.includes(39) && !b.includes(34) ? '"' : "'";
  let r = '';
  for (const n of b) {
    if (n === 92 || n === q.charCodeAt(0)) r += '\\' + String.fromCharCode(n);
    else if (n === 10) r += '\\n';
    else if (n === 13) r += '\\r';
    else if (n === 9) r += '\\t';
    else if (n < 0x20 || n >= 0x7f) r += '\\x' + hex(n, 2);
    else r += String.fromCharCode(n);
  }
  return 'b' + q + r + q;
}

/** Python's repr() of a number: integral numbers are ints; others floats (1e-05, 0.1). */
function pyNumber(v) {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  if (Number.isInteger(v)) return Math.abs(v) < 1e21 ? String(v) : BigInt(v).toString();
  const [m, e] = v.toExponential().split('e');
  const exp = Number(e);
  if (exp < -4) return m + 'e-' + String(-exp).padStart(2, '0');
  return String(v);
}

/** Python's repr() of a decoded value, so that output matches the Python helper's. */
function pyRepr(v) {
  if (typeof v === 'string') return pyStrRepr(v);
  return pyStr(v);
}

/** Python's str() of a decoded value (job.py writes str(key) and str(value)). */
function pyStr(v) {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return pyBytesRepr(v);
  if (v instanceof Tuple) return '(' + v.map(pyRepr).join(', ') + (v.length === 1 ? ',)' : ')');
  if (Array.isArray(v)) return '[' + v.map(pyRepr).join(', ') + ']';
  if (v instanceof Set) {
    const items = [...v].map(pyRepr).join(', ');
    if (v instanceof FrozenSet) return v.size ? 'frozenset({' + items + '})' : 'frozenset()';
    return v.size ? '{' + items + '}' : 'set()';
  }
  if (v instanceof Map) return '{' + [...v].map(([k, x]) => pyRepr(k) + ': ' + pyRepr(x)).join(', ') + '}';
  if (v instanceof SpilledValues) return v.toString();
  if (typeof v === 'object') {
    return '{' + Object.keys(v).map((k) => pyRepr(k) + ': ' + pyRepr(v[k])).join(', ') + '}';
  }
  return String(v);
}

/** job.py's TextContext: the context of the job's last stage. */
function makeTextContext(out) {
  const ctx = {
    field_separator: '\t',
    record_separator: '\n',
    write(key, value) {
      out.write(pyStr(key) + ctx.field_separator + pyStr(value) + ctx.record_separator);
    },
    writeline(value) {
      if (typeof value !== 'string') throw new TypeError('writeline() argument must be a string');
      out.write(value + ctx.record_separator);
    },
    writecsv(values) {
      // Python's csv.writer (excel dialect): quote fields holding , " CR or LF; CRLF ends.
      out.write(values.map((v) => {
        const s = v === null || v === undefined ? '' : pyStr(v);
        return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
      }).join(',') + '\r\n');
    },
    finish() { out.flush(); },
  };
  return ctx;
}

function pickFunction(exp, script, role, name, api) {
  let candidates;
  if (name) candidates = [name];
  else if (role === 'map') candidates = ['mapper', 'map'];
  else if (role === 'reduce') candidates = ['reducer', 'reduce'];
  else candidates = ['combine', 'reducer', 'reduce'];
  let fn = null;
  if (exp !== null && exp !== undefined) {
    for (const c of candidates) {
      if (typeof exp[c] === 'function') { fn = exp[c]; name = c; break; }
    }
    // `module.exports = function mapper(...) {...}`
    if (fn === null && typeof exp === 'function') { fn = exp; name = exp.name; }
  }
  if (fn === null) {
    throw new NoFunction(`${script} exports no ${role} function (looked for ${candidates.map((c) => '`' + c + '`').join(', ')})`);
  }
  if (api !== 'auto') return { fn, api };
  const n = fn.length;
  if (role === 'map') {
    if (n === 3) return { fn, api: 'legacy' };
    if (n === 4) return { fn, api: 'telemetry' };
    return { fn, api: name === 'mapper' ? 'legacy' : 'telemetry' };
  }
  if (n === 2) return { fn, api: 'legacy' };
  if (n === 3) return { fn, api: 'telemetry' };
  return { fn, api: name === 'reducer' ? 'legacy' : 'telemetry' };
}

// --- map -------------------------------------------------------------------------------------

/** What the last `F` control line said. */
class FileState {
  constructor() {
    this.index = 0;
    this.dims = [];
    this.name = '';
  }
  /** A control line that is not an escaped record (without its '\n'). */
  control(line) {
    if (line.charCodeAt(1) === 70 /* F */) {
      const f = line.split('\t');
      if (f.length >= 4 && /^[0-9]+$/.test(f[1])) {
        this.index = Number(f[1]);
        let dims = null;
        try { dims = JSON.parse(f[2]); } catch (e) { dims = null; }
        this.dims = Array.isArray(dims) ? dims : [];
        this.name = f.slice(3).join('\t');
        return;
      }
    }
    logLine(`polymr helper: ignoring a malformed control line: ${JSON.stringify(line.slice(0, 80))}\n`);
  }
  invalid(lineno, message) {
    message = String(message).replace(/[\r\n]+/g, ' ');
    logLine(`polymr:invalid:${this.index}:${lineno}:${message}\n`);
  }
}

const NO_TAB = 'no TAB between the uuid and the JSON';

/** mapper(uuid, file, js) over `<uuid>TAB<json>` records: the benchmarked path. */
function mapLegacyTelemetry(input, out, fn) {
  const state = new FileState();
  let name = state.name;
  let lineno = 0;
  let text = '';
  let s;
  while ((s = input.chunk()) !== null) {
    const len = s.length;
    let start = 0;
    let tab = -1; // the next TAB at or after `start` (len: none in this chunk)
    while (start < len) {
      let nl = s.indexOf('\n', start);
      if (nl === -1) nl = len;
      let b = start;
      start = nl + 1;
      if (s.charCodeAt(b) === 0) {
        if (s.charCodeAt(b + 1) === 61 /* = */) {
          b += 2; // an escaped record
        } else {
          state.control(s.slice(b, nl));
          name = state.name;
          lineno = 0;
          continue;
        }
      }
      lineno++;
      let end = nl;
      if (end > b && s.charCodeAt(end - 1) === 13) end--;
      if (tab < b) {
        tab = s.indexOf('\t', b);
        if (tab === -1) tab = len;
      }
      if (tab >= end) {
        if (end > b) state.invalid(lineno, NO_TAB);
        continue;
      }
      let js;
      try {
        js = parseJSON(s.slice(tab + 1, end), false);
      } catch (e) {
        state.invalid(lineno, 'invalid JSON: ' + e.message);
        continue;
      }
      let r = fn(s.slice(b, tab), name, js);
      if (typeof r !== 'string') r = asText(r);
      if (r.length) {
        text += r.charCodeAt(r.length - 1) === 10 ? r : r + '\n';
        if (text.length >= OUT_LIMIT) {
          out.write(text);
          text = '';
        }
      }
    }
  }
  out.write(text);
}

/** The other map combinations: legacy/lines, telemetry/telemetry, telemetry/lines. */
function mapGeneric(input, out, fn, api, format, sep, mapOnly, setup) {
  const state = new FileState();
  const telemetry = api === 'telemetry';
  const lines = format === 'lines';
  let ctx = null;
  if (telemetry && mapOnly) {
    ctx = makeTextContext(out);
    if (typeof setup === 'function') setup(ctx);
  } else if (telemetry) {
    ctx = makeContext(out, sep);
  }
  const reader = new Lines(input);
  let lineno = 0;
  let line;
  while ((line = reader.next()) !== null) {
    if (line.charCodeAt(0) === 0) {
      if (line.charCodeAt(1) === 61) {
        line = line.slice(2);
      } else {
        state.control(line);
        lineno = 0;
        continue;
      }
    }
    lineno++;
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    if (!line.length) continue;
    let key = null;
    let value;
    if (lines) {
      value = line;
    } else {
      const tab = line.indexOf('\t');
      if (tab === -1) {
        state.invalid(lineno, NO_TAB);
        continue;
      }
      key = line.slice(0, tab);
      value = line.slice(tab + 1);
      if (!telemetry) {
        try {
          value = parseJSON(value, false);
        } catch (e) {
          state.invalid(lineno, 'invalid JSON: ' + e.message);
          continue;
        }
      }
    }
    if (telemetry) {
      try {
        fn(key, state.dims, value, ctx);
      } catch (e) {
        // JSON.parse's SyntaxError is what Python's ValueError is to job.py: skip the record.
        if (!(e instanceof SyntaxError)) throw e;
        state.invalid(lineno, 'SyntaxError: ' + e.message);
      }
    } else {
      const r = asText(fn(key, state.name, value));
      if (r.length) out.write(r.charCodeAt(r.length - 1) === 10 ? r : r + '\n');
    }
  }
}

// --- reduce / combine ------------------------------------------------------------------------

/** (key, raw value) pairs of the sorted input, skipping empty lines; null at the end. */
function pairs(input, sep) {
  const reader = new Lines(input);
  const seplen = sep.length;
  return function next() {
    for (;;) {
      let line = reader.next();
      if (line === null) return null;
      if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
      if (!line.length) continue;
      const i = line.indexOf(sep);
      return i === -1 ? [line, ''] : [line.slice(0, i), line.slice(i + seplen)];
    }
  };
}

/** reduce(key, values): values is an array of the raw value strings of one key. */
function reduceLegacy(input, out, fn, sep) {
  const next = pairs(input, sep);
  let kv = next();
  while (kv !== null) {
    const key = kv[0];
    const values = [kv[1]];
    while ((kv = next()) !== null && kv[0] === key) values.push(kv[1]);
    const r = asText(fn(key, values));
    if (r.length) out.write(r.charCodeAt(r.length - 1) === 10 ? r : r + '\n');
  }
}

// How many bytes of raw values of one key are held in memory before they spill to a
// temporary file (POLYMR_HELPER_VALUES_MEMORY, as in the Python helper).
const VALUES_MEMORY = (() => {
  const n = Number(process.env.POLYMR_HELPER_VALUES_MEMORY);
  return Number.isFinite(n) && n > 0 ? n : 64 * 1024 * 1024;
})();
const COMBINE_SIZE = 50; // job.py's Reducer.COMBINE_SIZE

/** A key's values once they outgrow VALUES_MEMORY: their raw text in an unlinked temporary
 * file, one offset each in memory (8 bytes a value). `view()` is what `reduce` gets: it
 * reads like an array (`v[i]`, `v.length`, `for...of` any number of times, and the array
 * methods that do not change it: map, forEach, reduce, slice, at...) and cannot be changed. */
class SpilledValues {
  constructor(raws) {
    const dir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'polymr-values-'));
    const file = path.join(dir, 'values');
    this.fd = fs.openSync(file, 'w+', 0o600);
    fs.unlinkSync(file);
    fs.rmdirSync(dir);
    this.offsets = new Float64Array(1024);
    this.n = 0;
    this.end = 0; // bytes written or pending
    this.written = 0; // bytes on disk
    this.pending = [];
    this.pendingSize = 0;
    for (const r of raws) this.push(r);
  }
  push(raw) {
    if (this.n === this.offsets.length) {
      const grown = new Float64Array(this.n * 2);
      grown.set(this.offsets);
      this.offsets = grown;
    }
    const b = Buffer.from(raw + '\n', 'utf8');
    this.offsets[this.n++] = this.end;
    this.end += b.length;
    this.pending.push(b);
    this.pendingSize += b.length;
    if (this.pendingSize >= OUT_LIMIT) this.flush();
  }
  flush() {
    if (!this.pending.length) return;
    const buf = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingSize = 0;
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off, this.written + off);
    this.written += buf.length;
  }
  readAt(pos, len) {
    const buf = Buffer.allocUnsafe(len);
    let off = 0;
    while (off < len) {
      const n = fs.readSync(this.fd, buf, off, len - off, pos + off);
      if (n === 0) throw new Error('polymr helper: spilled values file truncated');
      off += n;
    }
    return buf;
  }
  get(i) {
    if (!Number.isInteger(i) || i < 0 || i >= this.n) return undefined;
    this.flush();
    const start = this.offsets[i];
    const end = i + 1 < this.n ? this.offsets[i + 1] : this.end;
    return decodeValue(this.readAt(start, end - start - 1).toString('utf8'));
  }
  * values() {
    this.flush();
    let pos = 0;
    let carry = null; // the bytes of an unfinished value (a chunk may end inside a character)
    while (pos < this.end) {
      const len = Math.min(OUT_LIMIT, this.end - pos);
      let buf = this.readAt(pos, len);
      pos += len;
      if (carry !== null) buf = Buffer.concat([carry, buf]);
      const last = buf.lastIndexOf(10);
      carry = last + 1 < buf.length ? buf.subarray(last + 1) : null;
      if (last === -1) continue;
      const lines = buf.toString('utf8', 0, last).split('\n');
      for (const l of lines) yield decodeValue(l);
    }
  }
  toString() {
    return `<polymr values of ${this.n} items, spilled to disk>`;
  }
  close() {
    fs.closeSync(this.fd);
  }
  view() {
    const READ_ONLY = new Set(['at', 'concat', 'entries', 'every', 'filter', 'find', 'findIndex',
      'findLast', 'findLastIndex', 'flat', 'flatMap', 'forEach', 'includes', 'indexOf', 'join',
      'keys', 'lastIndexOf', 'map', 'reduce', 'reduceRight', 'slice', 'some']);
    return new Proxy(this, {
      get(t, p, receiver) {
        if (typeof p === 'string') {
          if (p === 'length') return t.n;
          const c = p.charCodeAt(0);
          if (c >= 48 && c <= 57 && String(Number(p)) === p) return t.get(Number(p));
          if (READ_ONLY.has(p)) return (...a) => Array.prototype[p].apply(receiver, a);
          if (p === 'toString') return () => t.toString();
        }
        if (p === Symbol.iterator) return () => t.values();
        return undefined;
      },
      has(t, p) {
        if (typeof p === 'string' && String(Number(p)) === p) return Number(p) < t.n;
        return p === 'length';
      },
      set() { throw new TypeError('spilled values are read-only'); },
      deleteProperty() { throw new TypeError('spilled values are read-only'); },
    });
  }
}

/** The context job.py's reducer hands `combine`: a write replaces the key's values. */
function makeCollector() {
  return {
    key: undefined,
    values: null,
    write(key, value) {
      if (key !== this.key && encodeKey(key, '\n\n') !== encodeKey(this.key, '\n\n')) {
        throw new Error(`combine wrote key ${pyRepr(key)} while combining ${pyRepr(this.key)}: ` +
          "polymr's reducer combines one key at a time");
      }
      this.values = [value];
    },
  };
}

/** reduce(key, values, context) / combine(...) as job.py called them: `values` is an array of
 * one key's decoded values in written order (a SpilledValues view past VALUES_MEMORY); with
 * `combine` (the reducer of a job that has one) job.py's Collector: each time a key has 50
 * values, combine(key, values, collector) may replace them with what it writes; with
 * `identity` (a job without reduce) every pair is written as it comes. */
function reduceTelemetry(input, out, fn, sep, ctx, combine, identity) {
  const next = pairs(input, sep);
  const collector = combine ? makeCollector() : null;
  let kv = next();
  while (kv !== null) {
    const raw = kv[0];
    const key = decodeKey(raw);
    if (identity) {
      do ctx.write(key, decodeValue(kv[1])); while ((kv = next()) !== null && kv[0] === raw);
      continue;
    }
    if (collector) {
      collector.key = key;
      let values = [];
      do {
        values.push(decodeValue(kv[1]));
        if (values.length >= COMBINE_SIZE) {
          collector.values = values;
          combine(key, values, collector);
          values = collector.values;
        }
      } while ((kv = next()) !== null && kv[0] === raw);
      fn(key, values, ctx);
      continue;
    }
    let raws = [];
    let size = 0;
    let spilled = null;
    do {
      if (spilled !== null) spilled.push(kv[1]);
      else {
        raws.push(kv[1]);
        size += kv[1].length + 48;
        if (size > VALUES_MEMORY) {
          spilled = new SpilledValues(raws);
          raws = null;
        }
      }
    } while ((kv = next()) !== null && kv[0] === raw);
    if (spilled !== null) {
      try {
        fn(key, spilled.view(), ctx);
      } finally {
        spilled.close();
      }
    } else {
      fn(key, raws.map(decodeValue), ctx);
    }
  }
}

// --- main ------------------------------------------------------------------------------------

function printError(e) {
  let text;
  if (e instanceof Error && typeof e.stack === 'string') {
    // Drop the helper's frames and what called it (Node's module loader).
    const lines = e.stack.split('\n');
    const mine = lines.findIndex((l) => l.includes(__filename));
    text = (mine === -1 ? lines : lines.slice(0, mine)).filter((l) => !l.includes('(node:internal/')).join('\n');
  } else {
    let s;
    try { s = String(e); } catch (_) { s = Object.prototype.toString.call(e); }
    text = 'Uncaught ' + s;
  }
  logLine(text + '\n');
}

function main() {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    logLine(`polymr helper: ${e.message}\n${USAGE}`);
    return 2;
  }
  const { opts, user } = parsed;
  // Output goes to fd 1 through Output only; process.stdout (console.log) becomes stderr,
  // so stray prints are log lines and never corrupt the records.
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: true,
    get() { return process.stderr; },
  });
  const out = new Output(1);
  const input = new Input(0);
  const script = path.resolve(opts.script);
  process.argv = [process.argv[0], script].concat(user);
  if (!fs.statSync(script, { throwIfNoEntry: false })?.isFile()) {
    logLine(`polymr helper: no such script: ${opts.script}\n`);
    return 1;
  }
  try {
    const exp = require(script);
    let fn;
    let api;
    let identity = false;
    try {
      ({ fn, api } = pickFunction(exp, script, opts.role, opts.function, opts.api));
    } catch (e) {
      // job.py runs a script without `reduce` as a map-only job: its reducer writes every
      // pair as it comes. A reducer pointed at such a script does the same.
      if (!(e instanceof NoFunction) || opts.role !== 'reduce' || opts.function ||
          !exp || typeof exp.map !== 'function') throw e;
      fn = null;
      api = 'telemetry';
      identity = true;
    }
    if (opts.role === 'map') {
      if (api === 'legacy' && opts.format === 'telemetry') mapLegacyTelemetry(input, out, fn);
      else mapGeneric(input, out, fn, api, opts.format, opts.separator, opts['map-only'], exp && exp.setup_reduce);
    } else if (api === 'legacy') {
      reduceLegacy(input, out, fn, opts.separator);
    } else {
      let ctx;
      if (opts.role === 'combine') {
        ctx = makeContext(out, opts.separator);
      } else {
        ctx = makeTextContext(out);
        if (exp && typeof exp.setup_reduce === 'function') exp.setup_reduce(ctx);
      }
      const combine = opts.role === 'reduce' && exp && typeof exp.combine === 'function' &&
        exp.combine !== fn ? exp.combine : null;
      reduceTelemetry(input, out, fn, opts.separator, ctx, combine, identity);
    }
    out.flush();
  } catch (e) {
    if (e instanceof NoFunction) logLine(`polymr helper: ${e.message}\n`);
    else printError(e);
    return 1;
  }
  return 0;
}

process.exit(main());
