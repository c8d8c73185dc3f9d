/**
 * How a ResourceSet travels from the thread that read it to the event loop that serves it, and
 * from the primary to each worker: resources the receiver already holds go by hash, a resource
 * whose content it holds but that was read from elsewhere (a document that moved in its file)
 * goes as that hash and its new origin, and only the rest goes whole. A change to one document of
 * a 3,000-document file then carries one resource and the others' hashes, and the receiver keeps
 * its objects (and compile/reuse.ts the routes built from them) for everything unchanged.
 *
 * A sender keeps what its receiver holds: the set it sent last. Messages must arrive in order,
 * every one (a thread's port, a worker's IPC channel); a receiver that starts again needs a sender
 * that starts again (reset()). The set's hash and each resource's hashes travel along, so no
 * receiver hashes what it was sent (model/content-hash.ts).
 */
import { rememberHashes, resourceHashes, hashResources, type ResourceHashes } from '../model/content-hash.ts';
import type { Origin, Resource, ResourceSet } from '../model/resource.ts';

export type DeltaEntry =
  /** The full hash of a resource the receiver holds. */
  | string
  /** A held resource's content (by that resource's full hash), read from `origin`. */
  | { readonly full: string; readonly from: string; readonly origin: Origin }
  /** A resource the receiver does not hold. */
  | { readonly full: string; readonly content: string; readonly resource: Resource };

export interface SetDelta {
  /** hashResources() of the set. */
  readonly hash: string;
  readonly entries: readonly DeltaEntry[];
}

export interface DeltaSender {
  encode(set: ResourceSet): SetDelta;
  /** The receiver holds nothing (it started again, or could not decode). */
  reset(): void;
}

export function createDeltaSender(): DeltaSender {
  let held = new Set<string>();
  let heldContent = new Map<string, string>();
  return {
    encode(set) {
      const entries: DeltaEntry[] = [];
      const nextHeld = new Set<string>();
      const nextContent = new Map<string, string>();
      for (const r of set.resources) {
        const h = resourceHashes(r);
        const from = heldContent.get(h.content);
        if (held.has(h.full)) entries.push(h.full);
        else if (from !== undefined) entries.push({ full: h.full, from, origin: r.origin });
        else entries.push({ full: h.full, content: h.content, resource: r });
        nextHeld.add(h.full);
        nextContent.set(h.content, h.full);
      }
      held = nextHeld;
      heldContent = nextContent;
      return { hash: hashResources(set), entries };
    },
    reset() {
      held = new Set();
      heldContent = new Map();
    },
  };
}

export interface DeltaReceiver {
  /** The set the delta describes; throws (holding nothing) if it names a resource not held. */
  decode(delta: SetDelta): ResourceSet;
}

export function createDeltaReceiver(): DeltaReceiver {
  let held = new Map<string, Resource>();
  return {
    decode(delta) {
      const next = new Map<string, Resource>();
      const hashed: [Resource, ResourceHashes][] = [];
      const resources: Resource[] = [];
      const heldOrThrow = (full: string): Resource => {
        const r = held.get(full);
        if (r === undefined) {
          held = new Map();
          throw new Error(`the delta names resource ${full}, which this side does not hold`);
        }
        return r;
      };
      for (const e of delta.entries) {
        let r: Resource;
        if (typeof e === 'string') r = heldOrThrow(e);
        else if ('from' in e) {
          const base = heldOrThrow(e.from);
          r = { ...base, origin: e.origin };
          hashed.push([r, { full: e.full, content: resourceHashes(base).content }]);
        } else {
          r = e.resource;
          hashed.push([r, { full: e.full, content: e.content }]);
        }
        resources.push(r);
        next.set(typeof e === 'string' ? e : e.full, r);
      }
      held = next;
      const set: ResourceSet = { resources };
      rememberHashes(set, delta.hash, hashed);
      return set;
    },
  };
}
