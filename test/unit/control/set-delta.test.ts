import { describe, expect, it } from 'vitest';
import { contentHash, hashResources } from '../../../src/model/content-hash.ts';
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

const load = (docs: readonly string[], file = 'a.yaml'): ResourceSet =>
  loadResources([{ file, text: docs.join('\n---\n') }], { defaultNamespace: 'ns' }).resources;

/** Through JSON, as a cluster worker's IPC channel carries it. */
const wire = (d: SetDelta): SetDelta => JSON.parse(JSON.stringify(d)) as SetDelta;

/** Computed from scratch, on copies no cache has seen. */
const freshHash = (set: ResourceSet): string => hashResources(structuredClone(set));

describe('set deltas', () => {
  it('sends the whole set first, then edits of what the receiver holds', () => {
    const sender = createDeltaSender();
    const receiver = createDeltaReceiver();
    const docs = [0, 1, 2, 3, 4].map((i) => se(i));
    const first = load(docs);
    const d1 = sender.encode(first);
    expect(d1.edits.every((e) => 'resource' in e)).toBe(true);
    const got1 = receiver.decode(wire(d1));
    expect(got1).toEqual(first);
    expect(hashResources(got1)).toBe(freshHash(first));

    // se-1 changes and gets two lines longer: the documents after it move down.
    docs[1] = se(1, 8080) + '\n# a comment\n# and another';
    const second = load(docs);
    const d2 = sender.encode(second);
    expect(d2.edits).toEqual([
      { at: 0, count: 1 },
      { content: contentHash(second.resources[1]!), resource: second.resources[1] },
      { at: 2, count: 3, lines: 2, docs: 0 },
    ]);
    const got2 = receiver.decode(wire(d2));
    expect(got2).toEqual(second);
    expect(got2.resources[0]).toBe(got1.resources[0]);
    expect(got2.resources[2]).not.toBe(got1.resources[2]);
    expect(hashResources(got2)).toBe(freshHash(second));
    for (const [i, r] of got2.resources.entries())
      expect(contentHash(r)).toBe(contentHash(structuredClone(second.resources[i]!)));

    // Reordered, one removed, one read from another file: positions and origins.
    const third: ResourceSet = {
      resources: [
        second.resources[4]!,
        second.resources[0]!,
        { ...second.resources[2]!, origin: { kind: 'file', file: 'b.yaml', doc: 1, line: 1 } },
      ],
    };
    const d3 = sender.encode(third);
    expect(d3.edits).toEqual([
      { at: 4, count: 1 },
      { at: 0, count: 1 },
      { at: 2, origin: { kind: 'file', file: 'b.yaml', doc: 1, line: 1 } },
    ]);
    expect(receiver.decode(wire(d3))).toEqual(third);

    // Nothing changed: one range.
    expect(sender.encode(third).edits).toEqual([{ at: 0, count: 3 }]);
  });

  it('a receiver that starts again cannot decode edits; reset() sends the whole set again', () => {
    const sender = createDeltaSender();
    const set = load([se(0), se(1)]);
    createDeltaReceiver().decode(sender.encode(set));
    const restarted = createDeltaReceiver();
    expect(() => restarted.decode(sender.encode(set))).toThrow(/does not hold/);
    sender.reset();
    expect(restarted.decode(wire(sender.encode(set)))).toEqual(set);
  });
});
