/** The reload loop's policy (DESIGN §5 hot reload steps 1–2), on fake timers. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createReloadLoop, type ReloadResult } from '../../../src/control/loop.ts';
import type { BuildResult } from '../../../src/control/build.ts';
import type { Diagnostic } from '../../../src/errors/diagnostic.ts';
import type { ProviderUpdate } from '../../../src/providers/provider.ts';
import { silentLogger } from '../../../src/observability/logger.ts';
import type { Snapshot } from '../../../src/snapshot/types.ts';

/** An update whose "content" is a tag; the fake build hashes it and maps `bad*` to an error. */
function update(tag: string): ProviderUpdate {
  return {
    resources: {
      resources: [
        {
          kind: 'Namespace',
          apiVersion: 'v1',
          namespace: '',
          name: tag,
          labels: {},
          annotations: {},
          origin: { kind: 'file', file: 'x.yaml', document: 1 },
          spec: {},
        },
      ] as never,
    },
    diagnostics: [],
  };
}

function fakeBuild(u: ProviderUpdate): BuildResult {
  const tag = u.resources.resources[0]!.name;
  const diagnostics: Diagnostic[] = tag.startsWith('bad')
    ? [{ level: 'error', code: 'SLUICE_CONFIG_SCHEMA', message: `bad ${tag}` }]
    : [];
  return {
    resources: u.resources,
    snapshot: { hash: tag.replace(/-again$/, '') } as Snapshot,
    diagnostics,
    nowMs: 0,
  };
}

describe('reload loop', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function harness(opts: { applyFails?: (tag: string) => boolean } = {}) {
    const built: string[] = [];
    const applied: string[] = [];
    const results: ReloadResult[] = [];
    const loop = createReloadLoop({
      logger: silentLogger(),
      build: (u) => {
        built.push(u.resources.resources[0]!.name);
        return fakeBuild(u);
      },
      apply: async (b) => {
        if (opts.applyFails?.(b.snapshot.hash)) throw new Error('bind refused');
        applied.push(b.snapshot.hash);
      },
      onResult: (r) => results.push(r),
    });
    return { loop, built, applied, results };
  }

  it('turns a burst into one build of the newest set, after ~100 ms of quiet', async () => {
    const h = harness();
    for (let i = 0; i < 10; i++) {
      h.loop.onUpdate(update(`v${i}`));
      await vi.advanceTimersByTimeAsync(20);
    }
    // 20 ms have passed since the last event.
    expect(h.built).toEqual([]);
    await vi.advanceTimersByTimeAsync(79);
    expect(h.built).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await h.loop.settled();
    expect(h.built).toEqual(['v9']);
    expect(h.applied).toEqual(['v9']);
    expect(h.loop.stats.version).toBe(1);
  });

  it('caps the wait near 1 s when events never stop', async () => {
    const h = harness();
    for (let i = 0; i < 30; i++) {
      h.loop.onUpdate(update(`v${i}`));
      await vi.advanceTimersByTimeAsync(50);
    }
    // 1.5 s of events 50 ms apart: at least one reload happened without a quiet moment.
    expect(h.built.length).toBeGreaterThanOrEqual(1);
    expect(h.built.length).toBeLessThanOrEqual(2);
    expect(h.built[0]).toBe('v19');
  });

  it('does nothing for a set identical to the one serving', async () => {
    const h = harness();
    h.loop.onUpdate(update('a'));
    await vi.advanceTimersByTimeAsync(200);
    h.loop.onUpdate(update('a-again'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.applied).toEqual(['a']);
    expect(h.results).toEqual(['accepted', 'unchanged']);
    expect(h.loop.stats.version).toBe(1);
  });

  it('rejects a set with errors and keeps the last good one', async () => {
    const h = harness();
    h.loop.onUpdate(update('good'));
    await vi.advanceTimersByTimeAsync(200);
    h.loop.onUpdate(update('bad'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'rejected']);
    expect(h.loop.current()?.snapshot.hash).toBe('good');
    expect(h.loop.stats.currentHash).toBe('good');
  });

  it('rejects a set whose apply throws (a port that cannot be bound) without bumping the version', async () => {
    const h = harness({ applyFails: (tag) => tag === 'port-taken' });
    h.loop.onUpdate(update('good'));
    await vi.advanceTimersByTimeAsync(200);
    h.loop.onUpdate(update('port-taken'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'rejected']);
    expect(h.loop.stats.version).toBe(1);
    expect(h.loop.current()?.snapshot.hash).toBe('good');
    // The same set again is tried again (the port may be free now), not skipped as unchanged.
    h.loop.onUpdate(update('port-taken'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'rejected', 'rejected']);
  });

  it('keeps only the newest set while an apply runs, then applies it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const applied: string[] = [];
    const loop = createReloadLoop({
      logger: silentLogger(),
      build: fakeBuild,
      apply: async (b) => {
        if (b.snapshot.hash === 'slow') await gate;
        applied.push(b.snapshot.hash);
      },
    });
    loop.onUpdate(update('slow'));
    await vi.advanceTimersByTimeAsync(150);
    loop.onUpdate(update('x'));
    loop.onUpdate(update('y'));
    await vi.advanceTimersByTimeAsync(500);
    expect(applied).toEqual([]);
    release();
    await vi.advanceTimersByTimeAsync(200);
    await loop.settled();
    expect(applied).toEqual(['slow', 'y']);
    expect(loop.stats.version).toBe(2);
  });

  it('ignores updates after stop()', async () => {
    const h = harness();
    h.loop.stop();
    h.loop.onUpdate(update('a'));
    await vi.advanceTimersByTimeAsync(2000);
    expect(h.built).toEqual([]);
  });
});
