'use strict';
// The check-and-print helpers the Node.js client programs share: every reply is
// printed as `label => rendering` (the driver compares the transcript with the
// same program's run against real Redis) and checked against what we expect.

function show(v) {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (v instanceof Error) return 'Error(' + v.message + ')';
  if (Buffer.isBuffer(v)) return 'buf:' + JSON.stringify(v.toString('latin1'));
  if (v instanceof Map) return '{' + [...v].map(([k, x]) => show(k) + ': ' + show(x)).join(', ') + '}';
  if (v instanceof Set) return 'set(' + [...v].map(show).sort().join(', ') + ')';
  if (Array.isArray(v)) return '[' + v.map(show).join(', ') + ']';
  if (typeof v === 'object') {
    return '{' + Object.keys(v).map((k) => JSON.stringify(k) + ': ' + show(v[k])).join(', ') + '}';
  }
  if (typeof v === 'string') return JSON.stringify(v);
  return typeof v + ':' + String(v);
}

function same(a, b) {
  return show(a) === show(b);
}

class Transcript {
  constructor(program) {
    this.program = program;
    this.failures = 0;
  }
  seen(label, value) {
    process.stdout.write(label + ' => ' + show(value) + '\n');
  }
  // expected: a value (compared by rendering) or a predicate function
  check(label, got, expected) {
    this.seen(label, got);
    const ok = typeof expected === 'function' ? Boolean(expected(got)) : same(got, expected);
    if (!ok) {
      this.failures += 1;
      process.stderr.write(this.program + ': MISMATCH at ' + label + ': got ' + show(got) +
        ', expected ' + (typeof expected === 'function' ? expected.toString() : show(expected)) + '\n');
    }
  }
  done() {
    if (this.failures) {
      process.stderr.write(this.program + ': ' + this.failures + ' mismatches\n');
      return 1;
    }
    process.stderr.write(this.program + ': all checks passed\n');
    return 0;
  }
}

// The reply, or the error the client rejected with (errors are replies too).
async function attempt(promiseOrFn) {
  try {
    return await (typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn);
  } catch (e) {
    return e;
  }
}

const err = (text) => (got) => got instanceof Error && got.message === text;
const errPrefix = (text) => (got) => got instanceof Error && got.message.startsWith(text);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

module.exports = { Transcript, attempt, err, errPrefix, show, sleep };
