/**
 * VS-27 request mirroring: a copy of the request goes to each mirror cluster whose roll comes up,
 * fire and forget. Nothing about a mirror reaches the client: the primary never waits for it,
 * its failures are counted and dropped, and its response is drained and thrown away.
 *
 * The copy carries the headers the primary got (Host unchanged, or with Istio's old `-shadow`
 * suffix) and, when the request has a body, the same bytes: the body is teed as the primary's
 * upstream reads it, so the primary's pace sets the mirror's and never the reverse. A mirror that
 * falls behind by more than MIRROR_BODY_BUFFER_BYTES is cut (counted `cut`); a request whose body
 * the primary never reads (it was answered locally first) cannot be mirrored whole and is cut too.
 * The route timeout, when there is one, bounds a mirror as it bounds the primary.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Cluster, RequestMirror } from '../snapshot/types.ts';
import { rollPerMillion } from '../util/chance.ts';
import { Base64StreamDecoder } from '../util/grpc-web.ts';
import { hostSetOf, pickHost, type HostSet } from './endpoints.ts';
import {
  leaveQueue,
  releaseSlot,
  sendOnHost,
  type Slot,
  groupFor,
  type SlotUser,
  type UpstreamHost,
  type Waiter,
} from './pools.ts';

/** How far a mirror's body may fall behind the primary's before the mirror is cut. */
export const MIRROR_BODY_BUFFER_BYTES = 256 * 1024;

/** What a mirror reads of the request being forwarded (upstream/forward.ts ForwardContext). */
export interface MirrorSource {
  readonly req: IncomingMessage;
  readonly method: string;
  /** Body bytes a filter already read (ext_authz): sent first. */
  readonly bodyPrefix: Buffer | null;
  /** A gRPC-Web request bridged to gRPC: a `-text` body reaches the mirror decoded, as upstream. */
  readonly grpcWeb: { readonly textRequest: boolean } | null;
}

export type MirrorResult = 'completed' | 'failed' | 'cut';

/** Mirrored requests by cluster name and result, since the process started. */
const counts = new Map<string, Record<MirrorResult, number>>();

export function mirrorCounts(): ReadonlyMap<string, Readonly<Record<MirrorResult, number>>> {
  return counts;
}

function count(cluster: string, result: MirrorResult): void {
  let c = counts.get(cluster);
  if (c === undefined) counts.set(cluster, (c = { completed: 0, failed: 0, cut: 0 }));
  c[result] += 1;
}

/**
 * Starts the mirrors of one request. `headers` is the primary's upstream header list (copied
 * here); call before the primary's first attempt, so the body tee sees every byte. The copies
 * are dispatched on the next tick, after the primary.
 */
export function startMirrors(
  src: MirrorSource,
  mirrors: readonly RequestMirror[],
  headers: readonly string[],
  path: string,
  hasBody: boolean,
  timeoutMs: number | null,
): void {
  for (let i = 0; i < mirrors.length; i++) {
    const m = mirrors[i]!;
    if (m.cluster === null || !rollPerMillion(m.perMillion)) continue;
    const call = new MirrorCall(
      m.cluster,
      withShadowHost(headers, m.shadowHostSuffix),
      path,
      src.method,
      src.req.httpVersionMajor === 2,
    );
    if (hasBody) {
      if (src.grpcWeb !== null && src.grpcWeb.textRequest) call.decoder = new Base64StreamDecoder();
      call.body = teeBody(src, call);
    }
    if (timeoutMs !== null && timeoutMs > 0) call.timer = setTimeout(onMirrorTimeout, timeoutMs, call);
    // The tee is in place now; the copy itself is sent once the primary has been dispatched.
    process.nextTick(dispatchMirror, call);
  }
}

function dispatchMirror(call: MirrorCall): void {
  const set = hostSetOf(call.cluster);
  if (set instanceof Promise)
    set.then(
      (s) => call.dispatchTo(s),
      () => call.finish('failed'),
    );
  else call.dispatchTo(set);
}

/** Envoy's shadow host: `-shadow` after the host, before any port. */
function withShadowHost(headers: readonly string[], suffix: boolean): string[] {
  const out = headers.slice();
  if (!suffix) return out;
  for (let i = 0; i < out.length; i += 2) {
    if (out[i] !== 'host') continue;
    const host = out[i + 1]!;
    const colon = host.lastIndexOf(':');
    const bracket = host.lastIndexOf(']');
    out[i + 1] = colon > bracket ? host.slice(0, colon) + '-shadow' + host.slice(colon) : host + '-shadow';
  }
  return out;
}

function onMirrorTimeout(call: MirrorCall): void {
  call.timer = null;
  call.finish('failed');
}

/** One mirrored request: an undici dispatch handler that drains and drops the response. */
class MirrorCall implements SlotUser {
  readonly cluster: Cluster;
  readonly headers: string[];
  readonly path: string;
  readonly method: string;
  body: Readable | null = null;
  /** gRPC-Web text: the teed base64 decoded on the way, as the primary's body is. */
  decoder: Base64StreamDecoder | null = null;
  timer: NodeJS.Timeout | null = null;
  host: UpstreamHost | null = null;
  abort: ((err?: Error) => void) | null = null;
  done = false;
  // pools.ts's view of this request (SlotUser)
  slot: Slot | null = null;
  waiter: Waiter | null = null;

  /** The client spoke HTTP/2: a `useClientProtocol` cluster gets the mirror over HTTP/2 too. */
  readonly h2Client: boolean;

  constructor(cluster: Cluster, headers: string[], path: string, method: string, h2Client: boolean) {
    this.cluster = cluster;
    this.h2Client = h2Client;
    this.headers = headers;
    this.path = path;
    this.method = method;
  }

  dispatchTo(set: HostSet): void {
    if (this.done) return;
    const host = pickHost(set, null, null);
    if (host === null) return this.finish('failed');
    this.host = host;
    host.active += 1;
    // DR-6: a mirror is admitted, queued or refused under its cluster's circuit breakers, as
    // Envoy's shadow requests are (a refusal only fails the mirror).
    try {
      const group = groupFor(host, this.h2Client, this.headers);
      const admitted = sendOnHost(
        group,
        { path: this.path, method: this.method, headers: this.headers, body: this.body },
        this,
      );
      if (admitted === 'overflow') this.finish('failed');
    } catch {
      this.finish('failed');
    }
  }

  /** pools.ts: a queued mirror found a connection but the cluster is at its request cap. */
  onOverflow(): void {
    this.finish('failed');
  }

  /** A body chunk the primary read: queued for the mirror, or the mirror is cut if it lags. */
  feed(chunk: Buffer): void {
    const body = this.body;
    if (this.done || body === null) return;
    if (this.decoder !== null) {
      const decoded = this.decoder.push(chunk);
      if (decoded === null) return this.finish('failed');
      chunk = decoded;
    }
    body.push(chunk);
    if (body.readableLength > MIRROR_BODY_BUFFER_BYTES) this.finish('cut');
  }

  /** The request body ended; `whole` is false when bytes went by that the tee never saw. */
  endBody(whole: boolean): void {
    if (this.done || this.body === null) return;
    if (this.decoder !== null && !this.decoder.end()) this.finish('failed');
    else if (whole) this.body.push(null);
    else this.finish('cut');
  }

  finish(result: MirrorResult): void {
    if (this.done) return;
    this.done = true;
    count(this.cluster.name, result);
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (result !== 'completed') {
      const abort = this.abort;
      this.abort = null;
      if (abort !== null) abort(new Error('mirror ' + result));
      if (this.body !== null && !this.body.destroyed) this.body.destroy();
    }
    if (this.host !== null) {
      this.host.active -= 1;
      this.host = null;
      if (this.waiter !== null) leaveQueue(this);
      // Only a completed exchange leaves its connection fit for the next request.
      releaseSlot(this, result === 'completed');
    }
  }

  // undici's dispatch handler (the raw-header interface forward.ts uses too)

  onConnect(abort: (err?: Error) => void): void {
    if (this.done) abort(new Error('mirror cancelled'));
    else this.abort = abort;
  }

  onHeaders(): boolean {
    return !this.done;
  }

  onData(): boolean {
    return !this.done;
  }

  onComplete(): void {
    this.abort = null;
    this.finish('completed');
  }

  onError(): void {
    this.abort = null;
    this.finish('failed');
  }
}

// ---------------------------------------------------------------- body tee

const kTees = Symbol('sluice.mirrorTees');
type TeedRequest = IncomingMessage & { [kTees]?: MirrorCall[] };

/**
 * The mirror's body: whatever a filter read ahead, then each chunk the primary's upstream reads
 * from the client. The request is paused first if nothing reads it yet, so the tee's listener
 * does not start the flow: the primary's reader does, and keeps control of its pace.
 */
function teeBody(src: MirrorSource, call: MirrorCall): Readable {
  const body = new Readable({ read: noop });
  call.body = body;
  if (src.bodyPrefix !== null) call.feed(src.bodyPrefix);
  const req = src.req as TeedRequest;
  if (req.readableEnded) {
    body.push(null);
    return body;
  }
  const tees = req[kTees];
  if (tees !== undefined) {
    tees.push(call);
    return body;
  }
  if (req.readableFlowing !== false) req.pause();
  req[kTees] = [call];
  req.on('data', onTeeData);
  req.once('end', onTeeEnd);
  req.once('close', onTeeClose);
  return body;
}

function noop(): void {}

function onTeeData(this: TeedRequest, chunk: Buffer): void {
  const tees = this[kTees];
  if (tees !== undefined) for (let i = 0; i < tees.length; i++) tees[i]!.feed(chunk);
}

function onTeeEnd(this: TeedRequest): void {
  // A body the primary never read is dumped by Node without 'data' listeners: not whole.
  const whole = this.listenerCount('data', onTeeData) > 0;
  const tees = untee(this);
  for (let i = 0; i < tees.length; i++) tees[i]!.endBody(whole);
}

function onTeeClose(this: TeedRequest): void {
  // The client went away before its body ended: the mirror cannot be completed.
  const tees = untee(this);
  for (let i = 0; i < tees.length; i++) tees[i]!.finish('cut');
}

function untee(req: TeedRequest): MirrorCall[] {
  const tees = req[kTees] ?? [];
  req[kTees] = undefined;
  req.off('data', onTeeData);
  req.off('end', onTeeEnd);
  req.off('close', onTeeClose);
  return tees;
}
