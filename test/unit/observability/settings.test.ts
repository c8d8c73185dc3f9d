/**
 * MeshConfig → snapshot settings for the access log (DP-6) and tracing (Istio's
 * extensionProviders + a sampling percentage): compiled once, absent when off, and a named
 * provider that cannot be used is a warning, not silence.
 */
import { describe, expect, it } from 'vitest';
import { accessLogSettingsOf, compile, settingsOf, tracingSettingsOf } from '../../../src/compile/index.ts';
import { loadResources } from '../../../src/config/index.ts';

describe('access log settings', () => {
  it('off by default (Istio: accessLogFile ""), TEXT by default when on', () => {
    expect(accessLogSettingsOf(null)).toBeNull();
    expect(accessLogSettingsOf({ accessLogFile: '' })).toBeNull();
    expect(accessLogSettingsOf({ accessLogFile: '/dev/stdout' })).toEqual({
      path: '/dev/stdout',
      encoding: 'TEXT',
      format: null,
    });
    expect(
      accessLogSettingsOf({
        accessLogFile: '/var/log/a',
        accessLogEncoding: 'JSON',
        accessLogFormat: '{"a":"%DURATION%"}',
      }),
    ).toEqual({ path: '/var/log/a', encoding: 'JSON', format: '{"a":"%DURATION%"}' });
    // Settings without access log or tracing keep their old shape (no keys).
    expect(Object.keys(settingsOf(null))).not.toContain('accessLog');
    expect(Object.keys(settingsOf(null))).not.toContain('tracing');
  });
});

describe('tracing settings', () => {
  const provider = {
    name: 'otel',
    opentelemetry: {
      service: 'otel-collector.observability.svc.cluster.local',
      port: 4318,
      http: { path: 'v1/traces', timeout: '2s', headers: [{ name: 'x-tenant', value: 'edge' }] },
    },
  };

  it("an OpenTelemetry provider over HTTP, Istio's 1 % default sampling", () => {
    expect(tracingSettingsOf({ extensionProviders: [provider], tracing: { provider: 'otel' } })).toEqual({
      provider: 'otel',
      endpoint: 'http://otel-collector.observability.svc.cluster.local:4318/v1/traces',
      samplingPercentage: 1,
      timeoutMs: 2000,
      headers: [['x-tenant', 'edge']],
    });
    expect(
      tracingSettingsOf({
        extensionProviders: [provider],
        tracing: { provider: 'otel', randomSamplingPercentage: 25 },
      })!.samplingPercentage,
    ).toBe(25);
    expect(tracingSettingsOf({ extensionProviders: [provider] })).toBeNull();
  });

  it('a missing or unusable provider leaves tracing off with a warning on the MeshConfig', () => {
    const yaml = (spec: string): string => `
apiVersion: sluice.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec:
${spec}`;
    const run = (spec: string) => {
      const loaded = loadResources([{ file: 'mesh.yaml', text: yaml(spec) }], {
        defaultNamespace: 'default',
      });
      expect(loaded.diagnostics.filter((d) => d.level === 'error')).toEqual([]);
      return compile(loaded.resources, {
        namespace: 'istio-system',
        labels: {},
        rootNamespace: 'istio-system',
        nowMs: 0,
      });
    };
    const missing = run('  tracing: { provider: nope }\n');
    expect(missing.snapshot.settings.tracing).toBeUndefined();
    expect(missing.diagnostics.find((d) => d.path === 'spec.tracing.provider')).toMatchObject({
      level: 'warning',
      code: 'SLUICE_REF_NOT_FOUND',
      subject: { kind: 'MeshConfig', name: 'mesh' },
    });
    const grpc = run(
      '  extensionProviders: [{ name: otel, opentelemetry: { service: c.example, port: 4317 } }]\n  tracing: { provider: otel }\n',
    );
    expect(grpc.diagnostics.find((d) => d.path === 'spec.tracing.provider')?.code).toBe(
      'SLUICE_CONFIG_UNSUPPORTED',
    );
    const ok = run(
      '  extensionProviders: [{ name: otel, opentelemetry: { service: c.example, port: 4318, http: { path: /v1/traces } } }]\n  tracing: { provider: otel, randomSamplingPercentage: 100 }\n  accessLogFile: /dev/stdout\n  accessLogEncoding: JSON\n',
    );
    expect(ok.diagnostics.filter((d) => d.path === 'spec.tracing.provider')).toEqual([]);
    expect(ok.snapshot.settings.tracing?.endpoint).toBe('http://c.example:4318/v1/traces');
    expect(ok.snapshot.settings.accessLog).toEqual({ path: '/dev/stdout', encoding: 'JSON', format: null });
  });
});
