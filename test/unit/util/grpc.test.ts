import { describe, expect, it } from 'vitest';
import {
  GrpcMessageCounter,
  httpToGrpcStatus,
  isGrpcContentType,
  isGrpcRequest,
  parseGrpcTimeout,
  percentEncodeGrpcMessage,
} from '../../../src/util/grpc.ts';

/** gRPC framing: flag byte, 4-byte big-endian length, message. */
function frame(len: number): Buffer {
  const b = Buffer.alloc(5 + len, 7);
  b[0] = 0;
  b.writeUInt32BE(len, 1);
  return b;
}

describe('gRPC request recognition (Envoy hasGrpcContentType)', () => {
  it.each([
    ['application/grpc', true],
    ['application/grpc+proto', true],
    ['application/grpc;charset=utf-8', true],
    ['application/grpc-web', false],
    ['application/grpc-web+proto', false],
    ['application/grpcx', false],
    ['text/plain', false],
  ])('%s → %s', (v, want) => {
    expect(isGrpcContentType(v)).toBe(want);
  });

  it('reads the content-type of a raw header list, any case', () => {
    expect(isGrpcRequest(['Host', 'h', 'Content-Type', 'application/grpc'])).toBe(true);
    expect(isGrpcRequest(['host', 'h'])).toBe(false);
  });
});

describe('grpc-timeout', () => {
  it.each([
    ['1H', 3_600_000],
    ['2M', 120_000],
    ['3S', 3000],
    ['250m', 250],
    ['1500u', 1.5],
    ['2000000n', 2],
    ['99999999S', 99_999_999_000],
  ])('%s = %d ms', (v, ms) => {
    expect(parseGrpcTimeout(v)).toBe(ms);
  });

  it.each(['', 'S', '10', '10s', '123456789S', '1.5S', '-1S', ' 1S'])('%j is malformed: no deadline', (v) => {
    expect(parseGrpcTimeout(v)).toBeNull();
  });

  it('absent is no deadline', () => {
    expect(parseGrpcTimeout(null)).toBeNull();
  });
});

describe('local reply statuses and messages (DP-3)', () => {
  it.each([
    [400, 13],
    [401, 16],
    [403, 7],
    [404, 12],
    [429, 14],
    [502, 14],
    [503, 14],
    [504, 14],
    [500, 2],
    [200, 2],
  ])('HTTP %d → grpc-status %d', (http, grpc) => {
    expect(httpToGrpcStatus(http)).toBe(grpc);
  });

  it('grpc-message percent-encodes % and bytes outside printable ASCII, nothing else', () => {
    expect(percentEncodeGrpcMessage('upstream connect error or disconnect/reset before headers.')).toBe(
      'upstream connect error or disconnect/reset before headers.',
    );
    expect(percentEncodeGrpcMessage('100% done\n')).toBe('100%25 done%0A');
    expect(percentEncodeGrpcMessage('é')).toBe('%C3%A9');
  });
});

describe('GrpcMessageCounter', () => {
  it('counts messages however the stream is cut', () => {
    const stream = Buffer.concat([frame(0), frame(3), frame(70_000), frame(1)]);
    for (const size of [1, 2, 5, 7, 4096, stream.length]) {
      const c = new GrpcMessageCounter();
      for (let i = 0; i < stream.length; i += size) c.add(stream.subarray(i, i + size));
      expect(c.messages, `chunks of ${size}`).toBe(4);
    }
  });

  it('counts a message once its 5-byte prefix has arrived, before its body', () => {
    const c = new GrpcMessageCounter();
    c.add(frame(10).subarray(0, 4));
    expect(c.messages).toBe(0);
    c.add(frame(10).subarray(4, 6));
    expect(c.messages).toBe(1);
  });
});
