/**
 * Loads ioredis without the one module of it that slows down the whole process.
 *
 * ioredis's RESP3 decoder requires `built/resp/verbatim-string.js`, which defines
 * `class VerbatimString extends String`. In V8 (Node 26) a subclass of String, once defined, sends
 * String.prototype method loads in optimised code (`indexOf`, `slice`, `toLowerCase`,
 * `charCodeAt` …) through the generic property-load path: string handling anywhere in the
 * process, the gateway's header parsing included, runs about twice as slowly. Measured: the
 * gateway with ioredis loaded spent 3.8 % of its CPU in that path instead of 0.4 %, about 1.4 µs
 * of every request, whether or not a request went to Redis.
 *
 * sluice speaks RESP2, where no verbatim string can arrive, and ioredis maps the RESP3 type to a
 * Buffer anyway (its DataHandler), so nothing ever constructs the class: it is only compared
 * with. The module is therefore put in the require cache, before ioredis loads, as a class of
 * the same name that does not extend String. A layout of ioredis without the module loads as it
 * is.
 */
import { createRequire, Module } from 'node:module';

/** What the replaced module exports: compared with, never constructed (see above). */
class VerbatimString {
  readonly format: string;
  readonly value: string;

  constructor(format: string, value: string) {
    this.format = format;
    this.value = value;
  }

  toString(): string {
    return this.value;
  }
}

const VERBATIM_STRING_MODULE = 'ioredis/built/resp/verbatim-string.js';

export function loadIoredis(): typeof import('ioredis') {
  const require = createRequire(import.meta.url);
  let path: string | null = null;
  try {
    path = require.resolve(VERBATIM_STRING_MODULE);
  } catch {
    // Another layout of ioredis: nothing to replace.
  }
  if (path !== null && require.cache[path] === undefined) {
    const m = new Module(path);
    m.filename = path;
    m.loaded = true;
    m.exports = { VerbatimString };
    require.cache[path] = m;
  }
  return require('ioredis') as typeof import('ioredis');
}
