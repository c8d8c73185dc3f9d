import { describe, expect, it } from 'vitest';
import { formatDurationMs, parseDuration } from '../../../src/util/duration.ts';

describe('parseDuration', () => {
  it.each([
    ['10s', 10_000],
    ['1.5s', 1500],
    ['500ms', 500],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['2h45m', 9_900_000],
    ['300us', 0.3],
    ['0', 0],
    ['0s', 0],
    ['.5s', 500],
    ['10', 10_000],
    ['2.5', 2500],
  ])('%s = %d ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });

  it.each(['', 'apple', '10x', 's', '1.2.3s', '-1s', '10 s', '1s2'])('rejects %j', (text) => {
    const r = parseDuration(text);
    expect(r.ok).toBe(false);
  });

  it('refuses bare seconds when config asks for a unit', () => {
    const r = parseDuration('10', { bareSeconds: false });
    expect(r).toEqual({ ok: false, error: 'duration "10" needs a unit (e.g. "10s")' });
    expect(parseDuration('0', { bareSeconds: false })).toEqual({ ok: true, ms: 0 });
  });

  it('formats milliseconds', () => {
    expect(formatDurationMs(0)).toBe('0s');
    expect(formatDurationMs(250)).toBe('250ms');
    expect(formatDurationMs(1500)).toBe('1.5s');
  });
});
