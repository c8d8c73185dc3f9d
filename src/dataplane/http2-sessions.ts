/**
 * The HTTP/2 sessions of one listener: drain (GOAWAY), the idle timeout, and the rapid-reset
 * budget (CVE-2023-44487).
 *
 * The idle timeout is Envoy's (DP-9): a session with no open stream for `idleTimeoutMs` gets
 * GOAWAY. It is kept here rather than with Node's session timeout: a destroyed Http2Session whose
 * Node timeout is armed stays in memory until that timer fires (Node clears it only when the
 * session is not yet marked destroyed), so every closed session was held for the whole idle
 * timeout, an hour by default; a flood of short-lived sessions held hundreds of MiB. One sweep
 * per listener, running only while it has sessions, replaces a timer per session.
 */
import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';

interface SessionState {
  readonly owner: Http2Sessions;
  /** Streams open now. */
  streams: number;
  /** performance.now() when the last stream closed (or the session opened). */
  idleSince: number;
  /** Streams the client cancelled, less one per stream that completed. */
  resets: number;
}

const kState = Symbol('sluice.h2session');
type TrackedSession = ServerHttp2Session & { [kState]: SessionState };
/** The stream's session, kept: Node clears `stream.session` before the stream's 'close'. */
const kSession = Symbol('sluice.h2streamSession');
type TrackedStream = ServerHttp2Stream & { [kSession]?: TrackedSession };

export interface Http2SessionOptions {
  /** No open stream for this long: GOAWAY. */
  readonly idleTimeoutMs: number;
  /** Streams a client may reset per session beyond the ones it let complete. */
  readonly maxResets: number;
  /** The listener is draining: a session gets GOAWAY once its stream is answered. */
  readonly draining: () => boolean;
  /** A session was cut for abuse (rapid reset, protocol errors). */
  readonly onAbuse: () => void;
}

export class Http2Sessions {
  private readonly live = new Set<TrackedSession>();
  private readonly opts: Http2SessionOptions;
  private sweep: NodeJS.Timeout | null = null;

  constructor(opts: Http2SessionOptions) {
    this.opts = opts;
  }

  track(s: ServerHttp2Session): void {
    const session = s as TrackedSession;
    session[kState] = { owner: this, streams: 0, idleSince: performance.now(), resets: 0 };
    this.live.add(session);
    if (this.sweep === null) this.startSweep();
    session.once('close', () => {
      this.live.delete(session);
      if (this.live.size === 0) this.stopSweep();
    });
    session.on('error', (err: NodeJS.ErrnoException) => {
      // nghttp2 gave up on the peer (CONTINUATION without end, floods of bad frames); a reset
      // connection is no abuse.
      if (err.code?.startsWith('ERR_HTTP2') === true) this.opts.onAbuse();
      session.destroy();
    });
    session.on('stream', (stream: ServerHttp2Stream) => {
      session[kState].streams += 1;
      // A session opened while draining gets GOAWAY once its stream is answered, as HTTP/1
      // clients get `Connection: close` on their next response.
      if (this.opts.draining()) stream.once('close', () => session.close());
      // A stream reset in the same read as its HEADERS is already closed when this runs.
      if (stream.closed || stream.destroyed) this.streamClosed(session, stream);
      else {
        (stream as TrackedStream)[kSession] = session;
        stream.on('close', onTrackedStreamClose);
      }
    });
  }

  get size(): number {
    return this.live.size;
  }

  /** GOAWAY to every session: no new streams, open ones finish. */
  closeAll(): void {
    for (const s of this.live) s.close();
  }

  destroyAll(): void {
    for (const s of this.live) s.destroy();
  }

  streamClosed(session: TrackedSession, stream: ServerHttp2Stream): void {
    const state = session[kState];
    state.streams -= 1;
    if (state.streams === 0) state.idleSince = performance.now();
    if (session.destroyed) return;
    const code = stream.rstCode;
    if (code !== constants.NGHTTP2_CANCEL && code !== constants.NGHTTP2_REFUSED_STREAM) {
      // A completed stream earns one reset back: browsers cancel some streams legitimately.
      if (state.resets > 0) state.resets -= 1;
      return;
    }
    state.resets += 1;
    if (state.resets > this.opts.maxResets) {
      this.opts.onAbuse();
      session.destroy(new Error('HTTP/2 rapid reset'), constants.NGHTTP2_ENHANCE_YOUR_CALM);
    }
  }

  private startSweep(): void {
    const idleMs = this.opts.idleTimeoutMs;
    if (!(idleMs > 0)) return;
    // An idle session lives at most a quarter of the timeout (or a second) longer than the timeout.
    const every = Math.max(1000, Math.min(60_000, Math.floor(idleMs / 4)));
    this.sweep = setInterval(() => {
      const now = performance.now();
      for (const s of this.live) {
        const state = s[kState];
        if (state.streams !== 0 || now - state.idleSince < idleMs) continue;
        // GOAWAY first; a session that still has not gone a sweep later (a peer that vanished
        // mid-header-block leaves Node waiting on it) is cut.
        if (!s.closed) s.close();
        else if (!s.destroyed) s.destroy();
      }
    }, every);
    this.sweep.unref();
  }

  private stopSweep(): void {
    if (this.sweep !== null) clearInterval(this.sweep);
    this.sweep = null;
  }
}

/** A stream's 'close' ('on', as it comes once: no wrapper and no closure per stream). */
function onTrackedStreamClose(this: TrackedStream): void {
  const session = this[kSession];
  if (session !== undefined) session[kState].owner.streamClosed(session, this);
}
