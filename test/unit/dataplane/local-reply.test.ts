import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { encodeGrpcMessage, isGrpcRequest } from '../../../src/dataplane/local-reply.ts';

const req = (contentType: string | null) =>
  ({ rawHeaders: contentType === null ? [] : ['Content-Type', contentType] }) as unknown as IncomingMessage;

describe('gRPC local replies (DP-3)', () => {
  it('recognises gRPC requests as Envoy does: application/grpc alone or with +suffix or ;params', () => {
    expect(isGrpcRequest(req('application/grpc'))).toBe(true);
    expect(isGrpcRequest(req('application/grpc+proto'))).toBe(true);
    expect(isGrpcRequest(req('application/grpc;charset=utf-8'))).toBe(true);
    expect(isGrpcRequest(req('application/grpc-web'))).toBe(false);
    expect(isGrpcRequest(req('application/json'))).toBe(false);
    expect(isGrpcRequest(req(null))).toBe(false);
  });

  it('percent-encodes grpc-message outside printable ASCII and the % sign, not spaces', () => {
    expect(encodeGrpcMessage('fault filter abort')).toBe('fault filter abort');
    expect(encodeGrpcMessage('100% done\n')).toBe('100%25 done%0A');
    expect(encodeGrpcMessage('é')).toBe('%C3%A9');
  });
});
