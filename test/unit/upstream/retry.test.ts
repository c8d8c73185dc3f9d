import { describe, expect, it } from 'vitest';
import { backoffMs, retryCoversFailure, retryCoversStatus } from '../../../src/upstream/retry.ts';
import { classifyUpstreamError } from '../../../src/upstream/upstream-error.ts';
import { DEFAULT_RETRY, NO_RETRY } from '../../support/snapshot-builder.ts';

describe('VS-23/VS-24 retry decisions', () => {
  it('the Istio default retries connect failures but not an upstream 503', () => {
    expect(retryCoversFailure(DEFAULT_RETRY, classifyUpstreamError({ code: 'ECONNREFUSED' }))).toBe(true);
    expect(retryCoversStatus(DEFAULT_RETRY, 503)).toBe(false);
    expect(retryCoversFailure(DEFAULT_RETRY, classifyUpstreamError({ code: 'HPE_INVALID_CONSTANT' }))).toBe(
      false,
    );
  });
  it('5xx covers statuses ≥ 500, resets and connect failures', () => {
    const p = { ...NO_RETRY, attempts: 2, retryOn: { ...NO_RETRY.retryOn, fiveXx: true } };
    expect(retryCoversStatus(p, 500)).toBe(true);
    expect(retryCoversStatus(p, 404)).toBe(false);
    expect(retryCoversFailure(p, classifyUpstreamError({ code: 'ECONNRESET' }))).toBe(true);
  });
  it('gateway-error covers 502/503/504 only; retriable-4xx is 409; codes are explicit', () => {
    const p = {
      ...NO_RETRY,
      retryOn: { ...NO_RETRY.retryOn, gatewayError: true, retriable4xx: true, statusCodes: new Set([429]) },
    };
    expect(retryCoversStatus(p, 500)).toBe(false);
    expect(retryCoversStatus(p, 502)).toBe(true);
    expect(retryCoversStatus(p, 409)).toBe(true);
    expect(retryCoversStatus(p, 429)).toBe(true);
  });
  it('back-off is jittered within [0, min(max, base·(2^n−1))]', () => {
    for (let n = 1; n <= 6; n++) {
      for (let i = 0; i < 200; i++) {
        const ms = backoffMs(DEFAULT_RETRY, n);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(Math.min(250, 25 * (2 ** n - 1)));
      }
    }
  });
});
