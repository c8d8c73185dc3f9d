/**
 * Content hashes of sets and resources. A set's hash (the snapshot's `hash`) is taken over its
 * canonical JSON. Each resource also has two short hashes, kept per object: of everything in it
 * (`full`) and of its content without `origin` (`content`: where it was read from does not change
 * what it compiles to). The reload path ships those with each change, so a receiver can tell
 * which resources it already holds, and compile can reuse what it built from unchanged content.
 */
import { createHash } from 'node:crypto';
import type { Resource, ResourceSet } from '../model/resource.ts';

/** JSON with object keys sorted at every level: the canonical form hashes are taken over. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
        a < b ? -1 : a > b ? 1 : 0,
      );
      return Object.fromEntries(entries);
    }
    return v;
  });
}

export interface ResourceHashes {
  /** Everything in the resource, origin included. */
  readonly full: string;
  /** Everything but `origin`. */
  readonly content: string;
}

/** 128 bits, URL-safe: short enough to ship one per resource with every change. */
const digest = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 22);

const perResource = new WeakMap<Resource, ResourceHashes>();

export function resourceHashes(r: Resource): ResourceHashes {
  let h = perResource.get(r);
  if (h === undefined) {
    const { origin: _origin, ...content } = r;
    h = { full: digest(canonicalJson(r)), content: digest(canonicalJson(content)) };
    perResource.set(r, h);
  }
  return h;
}

/** Sets already hashed: the reload loop fingerprints a set and compile hashes the same object. */
const perSet = new WeakMap<ResourceSet, string>();

/** The content hash of a set (the snapshot's `hash`). Sets are immutable, so it is kept per set. */
export function hashResources(set: ResourceSet): string {
  let hash = perSet.get(set);
  if (hash === undefined) {
    // The hash of canonicalJson(set.resources), one resource at a time.
    const h = createHash('sha256').update('[');
    set.resources.forEach((r, i) => h.update(i === 0 ? canonicalJson(r) : `,${canonicalJson(r)}`));
    hash = h.update(']').digest('hex');
    perSet.set(set, hash);
  }
  return hash;
}

/**
 * Records hashes another process computed for this content (the one that read the set and
 * shipped it), so the receiver does not hash what it was sent again.
 */
export function rememberHashes(
  set: ResourceSet,
  hash: string,
  resources: readonly (readonly [Resource, ResourceHashes])[],
): void {
  perSet.set(set, hash);
  for (const [r, h] of resources) perResource.set(r, h);
}
