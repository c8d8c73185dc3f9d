import { describe, expect, it } from 'vitest';
import { classifyUpstreamError, withResponseFlag } from '../../../src/upstream/upstream-error.ts';

describe('DP-4/DP-5 upstream error classification', () => {
  const cases: [code: string, message: string, flag: string, status: number, retryable: boolean][] = [
    ['ECONNREFUSED', 'connect ECONNREFUSED', 'UF', 503, true],
    ['UND_ERR_CONNECT_TIMEOUT', 'Connect Timeout Error', 'UF', 503, true],
    ['ECONNRESET', 'read ECONNRESET', 'UR', 503, true],
    ['UND_ERR_SOCKET', 'other side closed', 'UC', 503, true],
    ['UND_ERR_SOCKET', 'bad response', 'UPE', 502, false],
    ['HPE_INVALID_CONSTANT', 'Expected HTTP/', 'UPE', 502, false],
    ['UND_ERR_HEADERS_TIMEOUT', 'Headers Timeout Error', 'UT', 504, true],
    ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'mismatch', 'UPE', 502, false],
  ];
  for (const [code, message, flag, status, retryable] of cases) {
    it(`${code} (${message}) → ${status} ${flag}`, () => {
      const f = classifyUpstreamError(Object.assign(new Error(message), { code }));
      expect(f.flag).toBe(flag);
      expect(f.status).toBe(status);
      expect(f.retryable).toBe(retryable);
    });
  }
  it('connect failure reset reason reads as Envoy', () => {
    expect(classifyUpstreamError({ code: 'ECONNREFUSED' }).resetReason).toBe('remote connection failure');
    expect(classifyUpstreamError({ code: 'UND_ERR_CONNECT_TIMEOUT' }).resetReason).toBe('connection timeout');
  });
});

describe('DP-5 several response flags, in Envoy order', () => {
  it('adds a flag where Envoy prints it', () => {
    expect(withResponseFlag('-', 'DI')).toBe('DI');
    expect(withResponseFlag('FI', 'DI')).toBe('DI,FI');
    expect(withResponseFlag('DC', 'DI')).toBe('DI,DC');
    expect(withResponseFlag('UT', 'DI')).toBe('UT,DI');
    expect(withResponseFlag('UF,URX', 'DI')).toBe('UF,DI,URX');
    expect(withResponseFlag('DI', 'DI')).toBe('DI');
  });
});
