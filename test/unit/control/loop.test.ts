/** The reload loop's policy (DESIGN §5 hot reload steps 1–2), on fake timers. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createReloadLoop, type ReloadLoopOptions, type ReloadResult } from '../../../src/control/loop.ts';
import type { BuildResult } from '../../../src/control/build.ts';
import type { Diagnostic } from '../../../src/errors/diagnostic.ts';
import type { ProviderUpdate } from '../../../src/providers/provider.ts';
import { createLogger, silentLogger } from '../../../src/observability/logger.ts';
import type { Snapshot } from '../../../src/snapshot/types.ts';

/** An update whose "content" is a tag, with the load diagnostics given. */
function update(tag: string, diagnostics: Diagnostic[] = []): ProviderUpdate {
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
    diagnostics,
    files: 1,
  };
}

/**
 * The fake build: the snapshot hash is the tag without `-again`; `bad*` is an error; `empty*`
 * compiles to no listeners.
 */
function fakeBuild(u: ProviderUpdate): BuildResult {
  const tag = u.resources.resources[0]!.name;
  const diagnostics: Diagnostic[] = [...u.diagnostics];
  if (tag.startsWith('bad'))
    diagnostics.push({ level: 'error', code: 'SLUICE_CONFIG_SCHEMA', message: `bad ${tag}` });
  const listeners = new Map(tag.startsWith('empty') ? [] : [[8080, {}]]);
  return {
    resources: u.resources,
    snapshot: { hash: tag.replace(/-again$/, ''), listeners } as unknown as Snapshot,
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

  function harness(
    opts: { applyFails?: (tag: string) => boolean; lines?: string[] } & Partial<ReloadLoopOptions> = {},
  ) {
    const built: string[] = [];
    const applied: string[] = [];
    const results: ReloadResult[] = [];
    let source = update('initial');
    const logger =
      opts.lines === undefined
        ? silentLogger()
        : createLogger({ level: 'info', destination: { write: (l: string) => void opts.lines!.push(l) } });
    const loop = createReloadLoop({
      logger,
      read: async () => source,
      build: (u) => {
        built.push(u.resources.resources[0]!.name);
        return fakeBuild(u);
      },
      apply: async (b) => {
        if (opts.applyFails?.(b.snapshot.hash)) throw new Error('bind refused');
        applied.push(b.snapshot.hash);
      },
      onResult: (r) => results.push(r),
      ...opts,
    });
    /** What a provider does: the source changes, then it says so. */
    const set = (u: ProviderUpdate): void => {
      source = u;
      loop.changed();
    };
    return { loop, built, applied, results, set };
  }

  it('turns a burst into one read and build of the newest set, after ~100 ms of quiet', async () => {
    const h = harness();
    for (let i = 0; i < 10; i++) {
      h.set(update(`v${i}`));
      await vi.advanceTimersByTimeAsync(20);
    }
    // 20 ms have passed since the last event.
    expect(h.loop.stats.reads).toBe(0);
    await vi.advanceTimersByTimeAsync(79);
    expect(h.loop.stats.reads).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await h.loop.settled();
    expect(h.loop.stats.reads).toBe(1);
    expect(h.built).toEqual(['v9']);
    expect(h.applied).toEqual(['v9']);
    expect(h.loop.stats.version).toBe(1);
  });

  it('caps the wait near 1 s when events never stop', async () => {
    const h = harness();
    for (let i = 0; i < 30; i++) {
      h.set(update(`v${i}`));
      await vi.advanceTimersByTimeAsync(50);
    }
    // 1.5 s of events 50 ms apart: at least one reload happened without a quiet moment.
    expect(h.built.length).toBeGreaterThanOrEqual(1);
    expect(h.built.length).toBeLessThanOrEqual(2);
    expect(h.built[0]).toBe('v19');
  });

  it('does nothing for a read that finds what it found last; an explicit reload says "unchanged"', async () => {
    const h = harness();
    h.set(update('a'));
    await vi.advanceTimersByTimeAsync(200);
    h.set(update('a'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.loop.stats.reads).toBe(2);
    expect(h.built).toEqual(['a']);
    expect(h.results).toEqual(['accepted']);
    // Other content that compiles to the same snapshot.
    h.set(update('a-again'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'unchanged']);
    expect((await h.loop.reload()).result).toBe('unchanged');
    expect(h.results).toEqual(['accepted', 'unchanged', 'unchanged']);
    expect(h.applied).toEqual(['a']);
    expect(h.loop.stats.version).toBe(1);
  });

  it('rejects a set with errors and keeps the last good one', async () => {
    const h = harness();
    h.set(update('good'));
    await vi.advanceTimersByTimeAsync(200);
    h.set(update('bad'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'rejected']);
    expect(h.loop.current()?.snapshot.hash).toBe('good');
    expect(h.loop.stats.currentHash).toBe('good');
  });

  it('logs every diagnostic of each change once, even when what it compiles to is unchanged', async () => {
    const lines: string[] = [];
    const h = harness({ lines });
    const said = (text: string): number => lines.filter((l) => l.includes(text)).length;
    h.set(update('good'));
    await vi.advanceTimersByTimeAsync(200);
    // The same resources plus a file that failed to parse: the valid set is unchanged.
    const parse: Diagnostic = {
      level: 'error',
      code: 'SLUICE_CONFIG_PARSE',
      message: 'broken.yaml is not YAML',
    };
    const warn: Diagnostic = {
      level: 'warning',
      code: 'SLUICE_CONFIG_UNSUPPORTED',
      message: 'fault is ignored',
    };
    h.set(update('good', [parse, warn]));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'rejected']);
    expect(said('broken.yaml is not YAML')).toBe(1);
    expect(said('fault is ignored')).toBe(1);
    // Read again unchanged (a touch, a save of the same bytes): nothing new to say.
    h.set(update('good', [parse, warn]));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.loop.stats.reads).toBe(3);
    expect(said('broken.yaml is not YAML')).toBe(1);
    // Asked (SIGHUP): said again.
    await h.loop.reload();
    expect(said('broken.yaml is not YAML')).toBe(2);
    // A warning alone on the serving set: logged, nothing applied.
    h.set(update('good', [warn]));
    await vi.advanceTimersByTimeAsync(200);
    expect(said('fault is ignored')).toBe(3);
    expect(h.results.at(-1)).toBe('unchanged');
    expect(h.applied).toEqual(['good']);
  });

  it('refuses a set that binds no server, first load included, unless allowEmpty', async () => {
    const lines: string[] = [];
    const h = harness({ lines });
    expect((await h.loop.reload()).result).toBe('accepted');
    h.set(update('empty'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'rejected']);
    expect(h.loop.current()?.snapshot.hash).toBe('initial');
    expect(lines.join('')).toContain(
      'the new config binds no Gateway server: it has no Gateway (1 resource from 1 file); refusing it (--allow-empty-config accepts it); the last good config keeps serving [SLUICE_CONFIG_EMPTY]',
    );

    const fresh = harness({ lines });
    fresh.set(update('empty-first'));
    await vi.advanceTimersByTimeAsync(200);
    expect(fresh.results).toEqual(['rejected']);
    expect(fresh.loop.stats.version).toBe(0);
    expect(lines.join('')).toContain('nothing is served until a config with a server arrives');

    const allowed = harness({ allowEmpty: true });
    await allowed.loop.reload();
    allowed.set(update('empty'));
    await vi.advanceTimersByTimeAsync(200);
    expect(allowed.results).toEqual(['accepted', 'accepted']);
    expect(allowed.loop.current()?.snapshot.hash).toBe('empty');
  });

  it('rejects a set whose apply throws (a port that cannot be bound) without bumping the version', async () => {
    const h = harness({ applyFails: (tag) => tag === 'port-taken' });
    h.set(update('good'));
    await vi.advanceTimersByTimeAsync(200);
    h.set(update('port-taken'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'rejected']);
    expect(h.loop.stats.version).toBe(1);
    expect(h.loop.current()?.snapshot.hash).toBe('good');
    // The same set read again is tried again (the port may be free now), not skipped as nothing new.
    h.set(update('port-taken'));
    await vi.advanceTimersByTimeAsync(200);
    expect(h.results).toEqual(['accepted', 'rejected', 'rejected']);
    const outcome = await h.loop.reload();
    expect(outcome.result).toBe('rejected');
    expect(String(outcome.applyError)).toContain('bind refused');
  });

  it('reads the newest set once an apply under way is done', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const applied: string[] = [];
    let source = update('slow');
    const loop = createReloadLoop({
      logger: silentLogger(),
      read: async () => source,
      build: fakeBuild,
      apply: async (b) => {
        if (b.snapshot.hash === 'slow') await gate;
        applied.push(b.snapshot.hash);
      },
    });
    loop.changed();
    await vi.advanceTimersByTimeAsync(150);
    source = update('x');
    loop.changed();
    source = update('y');
    loop.changed();
    await vi.advanceTimersByTimeAsync(500);
    expect(applied).toEqual([]);
    release();
    await vi.advanceTimersByTimeAsync(200);
    await loop.settled();
    expect(applied).toEqual(['slow', 'y']);
    expect(loop.stats.version).toBe(2);
    expect(loop.stats.reads).toBe(2);
  });

  it('ignores events after stop()', async () => {
    const h = harness();
    h.loop.stop();
    h.set(update('a'));
    await vi.advanceTimersByTimeAsync(2000);
    expect(h.loop.stats.reads).toBe(0);
    expect(h.built).toEqual([]);
  });
});
