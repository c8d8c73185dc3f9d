import { describe, expect, it } from 'vitest';
import { FLAGS, envName, flagHelp, parseOptions } from '../../../src/cli/flags.ts';

describe('cli flags', () => {
  it('takes repeatable --config and short flags', () => {
    const o = parseOptions(
      'explain',
      ['--config', 'a.yaml', '--config=dir/', '-H', 'End-User: jason', '-X', 'POST', 'http://x/y'],
      {},
    );
    expect(o.config).toEqual(['a.yaml', 'dir/']);
    expect(o.headers).toEqual([['end-user', 'jason']]);
    expect(o.method).toBe('POST');
    expect(o.positionals).toEqual(['http://x/y']);
  });

  it('reads every flag from SLUICE_* when not given, the command line winning', () => {
    const env = {
      SLUICE_WORKERS: '2',
      SLUICE_DRAIN_DELAY: '500ms',
      SLUICE_LABELS: 'app=edge,istio=ingressgateway',
      SLUICE_CONFIG: 'a.yaml,b.yaml',
    };
    const o = parseOptions('serve', [], env);
    expect(o.workers).toBe(2);
    expect(o.drainDelayMs).toBe(500);
    expect(o.labels).toEqual({ app: 'edge', istio: 'ingressgateway' });
    expect(o.config).toEqual(['a.yaml', 'b.yaml']);
    expect(parseOptions('serve', ['--workers', '3'], env).workers).toBe(3);
  });

  it('takes durations as seconds or Istio duration strings', () => {
    expect(parseOptions('serve', ['--drain-timeout', '10'], {}).drainTimeoutMs).toBe(10_000);
    expect(parseOptions('serve', ['--drain-timeout', '1m'], {}).drainTimeoutMs).toBe(60_000);
  });

  it('applies the documented defaults', () => {
    const o = parseOptions('serve', [], {});
    expect(o.namespace).toBe('istio-system');
    expect(o.labels).toEqual({ istio: 'ingressgateway' });
    expect([o.statusPort, o.metricsPort, o.adminPort]).toEqual([15021, 15090, 15000]);
    expect(o.drainDelayMs).toBe(5000);
    expect(o.drainTimeoutMs).toBe(30_000);
    expect(o.workers).toBeGreaterThanOrEqual(1);
  });

  it('rejects unknown flags, flags of other commands and bad values with a usage error', () => {
    expect(() => parseOptions('validate', ['--nope'], {})).toThrow(/unknown flag --nope/);
    expect(() => parseOptions('validate', ['--workers', '2'], {})).toThrow(
      /does not apply to sluice validate/,
    );
    expect(() => parseOptions('serve', ['--workers', 'many'], {})).toThrow(/whole number/);
    expect(() => parseOptions('serve', ['--labels', 'novalue'], {})).toThrow(/k=v/);
    expect(() => parseOptions('serve', ['--config'], {})).toThrow(/needs a value/);
  });

  it('documents every flag with its environment variable in help', () => {
    for (const f of FLAGS) {
      for (const c of f.commands) expect(flagHelp(c)).toContain(envName(f.name));
    }
  });
});
