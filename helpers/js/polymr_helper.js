#!/usr/bin/env node
// polymr's Node helper: loads a user's plain functions and runs them over stdin.
//
//   node polymr_helper.js --role ROLE --script PATH [--function NAME]
//        [--api auto|legacy|telemetry] [--format telemetry|lines] [--separator SEP] -- [USER ARGS...]
//
// helpers/PROTOCOL.md is the contract. Built-in modules only, one CommonJS file: the driver
// embeds it and writes it alone into a temporary directory.
//
// I/O is synchronous on purpose (fs.readSync on fd 0, fs.writeSync on fd 1): a blocking write
// into a full pipe *is* backpressure, and a synchronous reader lets the telemetry reduce API
// hand the user a real one-pass iterator streamed from stdin, as in Python, instead of an
// array of every value of a key. Records are split from 64 KiB chunks by hand (readline is
// slow) and output leaves in ~64 KiB writes.
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
      const k = typeof key === 'string' ? key : String(key);
      if (k.includes(sep) || k.includes('\n') || k.includes('\r')) {
        throw new Error(`context.write: key ${JSON.stringify(k)} contains the separator or a newline`);
      }
      let v = JSON.stringify(value);
      if (v === undefined) v = 'null'; // undefined, functions, symbols
      out.write(k + sep + v + '\n');
    },
  };
}

/** Python's repr() of a JSON-decoded value, so that output matches the Python helper's. */
function pyRepr(v) {
  if (typeof v === 'string') {
    const q = v.includes("'") && !v.includes('"') ? '"' : "'";
    let r = '';
    for (const c of v) {
      const n = c.codePointAt(0);
      if (c === '\\' || c === q) r += '\\' + c;
      else if (c === '\n') r += '\\n';
      else if (c === '\r') r += '\\r';
      else if (c === '\t') r += '\\t';
      else if (n < 0x20 || n === 0x7f) r += '\\x' + n.toString(16).padStart(2, '0');
      else r += c;
    }
    return q + r + q;
  }
  return pyStr(v);
}

/** Python's str() of a JSON-decoded value (job.py writes str(key) and str(value)). */
function pyStr(v) {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    return String(v);
  }
  if (Array.isArray(v)) return '[' + v.map(pyRepr).join(', ') + ']';
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
        js = JSON.parse(s.slice(tab + 1, end));
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
          value = JSON.parse(value);
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

function decodeValue(raw) {
  try {
    return JSON.parse(raw);
  } catch (e) {
    return raw; // not JSON (a binary mapper's plain text, an empty value): the text itself
  }
}

/** reduce(key, values, context) / combine(...): values is an array of one key's decoded
 * values in input order; the reducer writes through a TextContext, after setup_reduce. */
function reduceTelemetry(input, out, fn, sep, ctx) {
  const next = pairs(input, sep);
  let kv = next();
  while (kv !== null) {
    const key = kv[0];
    const values = [decodeValue(kv[1])];
    while ((kv = next()) !== null && kv[0] === key) values.push(decodeValue(kv[1]));
    fn(key, values, ctx);
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
    const { fn, api } = pickFunction(exp, script, opts.role, opts.function, opts.api);
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
      reduceTelemetry(input, out, fn, opts.separator, ctx);
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
