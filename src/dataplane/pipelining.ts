/**
 * HTTP/1.1 pipelining, one request at a time per connection. Node's parser reads ahead and hands
 * every pipelined request to the handler at once; Envoy's codec reads the next request only after
 * the previous stream ended. So a request whose connection still has an earlier response
 * unfinished waits here, and the connection's reading pauses until the queue drains: one client
 * connection never fans out into parallel upstream requests, and its answers come in order.
 *
 * A connection that does not pipeline pays two property reads per request; only a waiting request
 * allocates.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

interface Turn {
  /** The response Node queued for this request; null for an upgrade (it takes the socket). */
  readonly res: ServerResponse | null;
  readonly start: () => void;
}

const kWaiting = Symbol('sluice.pipelined');

/** `_httpMessage`: the response Node is writing on this connection now (Node's own field). */
type HttpSocket = Duplex & { _httpMessage?: ServerResponse | null; [kWaiting]?: Turn[] };

/** Whether a request must wait: an earlier response on its connection is unfinished, or queued. */
export function mustWait(socket: Duplex, res: ServerResponse | null): boolean {
  const s = socket as HttpSocket;
  const writing = s._httpMessage;
  if (writing != null && writing !== res) return true;
  const waiting = s[kWaiting];
  return waiting !== undefined && waiting.length > 0;
}

/** Queues `start` (a request mustWait said must wait) behind the earlier ones on its connection. */
export function waitTurn(socket: Duplex, res: ServerResponse | null, start: () => void): void {
  const s = socket as HttpSocket;
  const waiting = s[kWaiting];
  if (waiting !== undefined && waiting.length > 0) {
    waiting.push({ res, start });
    return;
  }
  s[kWaiting] = [{ res, start }];
  // Stop reading more requests until these are through (Envoy disables reading likewise).
  s.pause();
  afterClose(s, s._httpMessage!);
}

function afterClose(s: HttpSocket, res: ServerResponse): void {
  if (res.closed) queueMicrotask(() => nextTurn(s));
  else res.once('close', () => nextTurn(s));
}

function nextTurn(s: HttpSocket): void {
  const waiting = s[kWaiting];
  if (waiting === undefined) return;
  if (s.destroyed) {
    // The connection is gone: the requests still waiting were never started, as in Envoy.
    waiting.length = 0;
    return;
  }
  const turn = waiting.shift()!;
  turn.start();
  if (waiting.length === 0) {
    s.resume();
    return;
  }
  if (turn.res === null) return;
  afterClose(s, turn.res);
}
