import type { IncomingMessage } from 'node:http';

/** Envoy's body for a 413 local reply. */
export const PAYLOAD_TOO_LARGE = Buffer.from('Payload Too Large');

/** Reads up to `max` body bytes ahead (whole chunks kept for the upstream), then pauses the stream. */
export function readBodyPrefix(
  req: IncomingMessage,
  max: number,
): Promise<{ buffer: Buffer; complete: boolean }> {
  if (
    req.complete ||
    (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined)
  )
    return Promise.resolve({ buffer: Buffer.alloc(0), complete: true });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (complete: boolean): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onEnd);
      req.off('close', onEnd);
      req.pause();
      resolve({ buffer: Buffer.concat(chunks), complete });
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > max) done(false);
    };
    const onEnd = (): void => done(true);
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onEnd);
    req.once('close', onEnd);
  });
}
