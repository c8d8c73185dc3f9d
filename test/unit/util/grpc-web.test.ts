import { describe, expect, it } from 'vitest';
import {
  Base64StreamDecoder,
  GrpcFrameSplitter,
  grpcWebEncodingOf,
  trailersFrame,
  wantsTextResponse,
} from '../../../src/util/grpc-web.ts';

describe('gRPC-Web content types (Envoy grpc_web_filter.cc)', () => {
  it.each([
    ['application/grpc-web', 'binary'],
    ['application/grpc-web+proto', 'binary'],
    ['application/grpc-web-text', 'text'],
    ['application/grpc-web-text+proto', 'text'],
    // Envoy compares exactly: parameters, other subtypes and case are not gRPC-Web to it.
    ['application/grpc-web; charset=utf-8', null],
    ['application/grpc-web+json', null],
    ['Application/grpc-web', null],
    ['application/grpc', null],
  ])('%s → %s', (type, want) => {
    expect(grpcWebEncodingOf(type)).toBe(want);
  });

  it('a text response only when accept names the text type', () => {
    expect(wantsTextResponse('application/grpc-web-text')).toBe(true);
    expect(wantsTextResponse('application/grpc-web-text+proto')).toBe(true);
    expect(wantsTextResponse('application/grpc-web')).toBe(false);
    expect(wantsTextResponse(null)).toBe(false);
  });
});

describe('Base64StreamDecoder', () => {
  const payload = Buffer.from(Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff));
  const text = payload.toString('base64');

  it.each([1, 2, 3, 5, 7, 64])('decodes a body cut every %i bytes to the same bytes', (size) => {
    const d = new Base64StreamDecoder();
    const out: Buffer[] = [];
    for (let i = 0; i < text.length; i += size) out.push(d.push(Buffer.from(text.slice(i, i + size)))!);
    expect(d.end()).toBe(true);
    expect(Buffer.concat(out)).toEqual(payload);
  });

  it('takes padding at the end of any group (one run per message)', () => {
    const d = new Base64StreamDecoder();
    const runs = Buffer.from('a').toString('base64') + Buffer.from('bc').toString('base64') + 'ZGVm';
    expect(d.push(Buffer.from(runs))!.toString()).toBe('abcdef');
    expect(d.end()).toBe(true);
  });

  it('refuses characters outside the alphabet and padding inside a group', () => {
    expect(new Base64StreamDecoder().push(Buffer.from('AA*A'))).toBeNull();
    expect(new Base64StreamDecoder().push(Buffer.from('A=AA'))).toBeNull();
    expect(new Base64StreamDecoder().push(Buffer.from('AAAA\nAAA'))).toBeNull();
  });

  it('a body that ends mid-group is refused at its end (padding is required)', () => {
    const d = new Base64StreamDecoder();
    expect(d.push(Buffer.from('AAAAAA'))).toEqual(Buffer.alloc(3));
    expect(d.end()).toBe(false);
  });
});

describe('trailers frame and frame splitting', () => {
  it('the trailers frame: flag 0x80, big-endian length, name:value CRLF each', () => {
    const f = trailersFrame(['grpc-status', '0', 'grpc-message', 'ok']);
    const body = 'grpc-status:0\r\ngrpc-message:ok\r\n';
    expect(f[0]).toBe(0x80);
    expect(f.readUInt32BE(1)).toBe(body.length);
    expect(f.subarray(5).toString()).toBe(body);
  });

  it('whole frames out however the stream was cut', () => {
    const frames = [3, 0, 20_000, 1].map((n, i) => {
      const f = Buffer.alloc(5 + n, i + 1);
      f[0] = 0;
      f.writeUInt32BE(n, 1);
      return f;
    });
    const all = Buffer.concat(frames);
    for (const size of [1, 4, 5, 6, 999, all.length]) {
      const s = new GrpcFrameSplitter();
      const got: Buffer[] = [];
      for (let i = 0; i < all.length; i += size) got.push(...s.push(all.subarray(i, i + size)));
      expect(got.map((b) => b.length)).toEqual(frames.map((b) => b.length));
      expect(Buffer.concat(got)).toEqual(all);
    }
  });
});
