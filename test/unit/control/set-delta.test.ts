import { describe, expect, it } from 'vitest';
import { hashResources, resourceHashes } from '../../../src/model/content-hash.ts';
import { loadResources } from '../../../src/config/index.ts';
import { createDeltaReceiver, createDeltaSender, type SetDelta } from '../../../src/control/set-delta.ts';
import type { ResourceSet } from '../../../src/model/resource.ts';

const se = (i: number, port = 80): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: se-${i}, namespace: ns}
spec:
  hosts: [s${i}.example.org]
  resolution: DNS
  ports: [{number: ${port}, name: http, protocol: HTTP}]`;

const load = (docs: readonly string[]): ResourceSet =>
  loadResources([{ file: 'a.yaml', text: docs.join('\n---\n') }], { defaultNamespace: 'ns' }).resources;

/** Through JSON, as a cluster worker's IPC channel carries it. */
const wire = (d: SetDelta): SetDelta => JSON.parse(JSON.stringify(d)) as SetDelta;

/** The set's hash computed from scratch, on copies no cache has seen. */
const freshHash = (set: ResourceSet): string => hashResources(structuredClone(set));

describe('set deltas', () => {
  it('sends the whole set first, then only what the receiver does not hold', () => {
    const sender = createDeltaSender();
    const receiver = createDeltaReceiver();
    const docs = [0, 1, 2, 3].map((i) => se(i));
    const first = load(docs);
    const d1 = sender.encode(first);
    expect(d1.entries.every((e) => typeof e === 'object' && 'resource' in e)).toBe(true);
    const got1 = receiver.decode(wire(d1));
    expect(got1).toEqual(first);
    expect(hashResources(got1)).toBe(freshHash(first));

    // se-1 changes and gets longer: the documents after it move down a few lines.
    docs[1] = se(1, 8080) + '\n# a comment\n# and another';
    const second = load(docs);
    const d2 = sender.encode(second);
    expect(d2.entries[0]).toBe(resourceHashes(first.resources[0]!).full);
    expect(d2.entries[1]).toMatchObject({ resource: { name: 'se-1' } });
    expect(d2.entries[2]).toMatchObject({ from: resourceHashes(first.resources[2]!).full });
    const got2 = receiver.decode(wire(d2));
    expect(got2).toEqual(second);
    expect(got2.resources[0]).toBe(got1.resources[0]);
    expect(got2.resources[2]).not.toBe(got1.resources[2]);
    expect(hashResources(got2)).toBe(freshHash(second));
    for (const [i, r] of got2.resources.entries())
      expect(resourceHashes(r)).toEqual(resourceHashes(structuredClone(second.resources[i]!)));

    // Nothing changed: hashes only.
    const d3 = sender.encode(load(docs));
    expect(d3.entries.every((e) => typeof e === 'string')).toBe(true);
    expect(receiver.decode(wire(d3)).resources[1]).toBe(got2.resources[1]);
  });

  it('a receiver that starts again cannot decode a delta; reset() sends the whole set again', () => {
    const sender = createDeltaSender();
    const set = load([se(0), se(1)]);
    createDeltaReceiver().decode(sender.encode(set));
    const restarted = createDeltaReceiver();
    expect(() => restarted.decode(sender.encode(set))).toThrow(/does not hold/);
    sender.reset();
    expect(restarted.decode(wire(sender.encode(set)))).toEqual(set);
  });
});
