import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  hashResources,
  rememberSameContent,
  resourceHashes,
} from '../../../src/model/content-hash.ts';
import type { Resource } from '../../../src/model/resource.ts';

const r = (spec: unknown, line = 1): Resource =>
  ({
    kind: 'MeshConfig',
    apiVersion: 'sluice.dev/v1alpha1',
    namespace: 'x',
    name: 'm',
    labels: {},
    annotations: {},
    origin: { kind: 'file', file: 'a.yaml', doc: 1, line },
    spec,
  }) as Resource;

describe('content hashes', () => {
  it('a set hashes to the sha256 of its canonical JSON', () => {
    const set = { resources: [r({ b: 2, a: 1 }), r({ c: [3] }, 9)] };
    const expected = createHash('sha256').update(canonicalJson(set.resources)).digest('hex');
    expect(hashResources(set)).toBe(expected);
    expect(hashResources({ resources: [] })).toBe(createHash('sha256').update('[]').digest('hex'));
  });

  it('a resource’s content hash ignores where it was read from; its full hash does not', () => {
    const a = resourceHashes(r({ a: 1 }, 1));
    const moved = resourceHashes(r({ a: 1 }, 40));
    const changed = resourceHashes(r({ a: 2 }, 1));
    expect(moved.content).toBe(a.content);
    expect(moved.full).not.toBe(a.full);
    expect(changed.content).not.toBe(a.content);
    expect(a.full).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(resourceHashes(r({ b: 2, a: 1 })).content).toBe(resourceHashes(r({ a: 1, b: 2 })).content);
  });
});

describe('content hashes of a resource read from elsewhere', () => {
  it('take what its content had and hash the set as a fresh computation does', () => {
    const base = r({ a: [1, { b: 2 }] }, 3);
    const moved: Resource = { ...base, origin: { kind: 'file', file: 'a.yaml', doc: 7, line: 90 } };
    rememberSameContent(moved, base);
    expect(resourceHashes(moved).content).toBe(resourceHashes(base).content);
    expect(resourceHashes(moved).full).not.toBe(resourceHashes(base).full);
    const set = { resources: [moved, base] };
    expect(hashResources(set)).toBe(createHash('sha256').update(canonicalJson(set.resources)).digest('hex'));
  });
});
