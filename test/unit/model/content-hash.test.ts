import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  contentHash,
  hashResources,
  rememberSameContent,
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

  it('a resource’s content hash ignores where it was read from', () => {
    const a = contentHash(r({ a: 1 }, 1));
    expect(contentHash(r({ a: 1 }, 40))).toBe(a);
    expect(contentHash(r({ a: 2 }, 1))).not.toBe(a);
    expect(a).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(contentHash(r({ b: 2, a: 1 }))).toBe(contentHash(r({ a: 1, b: 2 })));
  });
});

describe('content hashes of a resource read from elsewhere', () => {
  it('take what its content had and hash the set as a fresh computation does', () => {
    const base = r({ a: [1, { b: 2 }] }, 3);
    const moved: Resource = { ...base, origin: { kind: 'file', file: 'a.yaml', doc: 7, line: 90 } };
    rememberSameContent(moved, base);
    expect(contentHash(moved)).toBe(contentHash(base));
    const set = { resources: [moved, base] };
    expect(hashResources(set)).toBe(createHash('sha256').update(canonicalJson(set.resources)).digest('hex'));
  });
});
