/**
 * Content hashes of sets and resources. A set's hash (the snapshot's `hash`) is taken over its
 * canonical JSON. Each resource also has a short hash of its content without `origin` (where it
 * was read from does not change what it compiles to): the reload path tells by it which
 * resources a receiver already holds, and compile reuses what it built from unchanged content.
 *
 * What is computed is kept per object, and a resource made from another by changing only its
 * origin (a document that moved in its file, config/index.ts) takes the other's, so a reload that
 * changes one document of thousands serialises one resource again, not thousands.
 */
import { createHash } from 'node:crypto';
import type { Resource, ResourceSet } from './resource.ts';

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

/** 128 bits, URL-safe: short enough to ship with every resource sent. */
const digest = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 22);

/**
 * A resource's canonical JSON without `origin`, as the members before and after where `origin`
 * sorts (each `"key":value,...` without braces), and the content hash.
 */
interface Content {
  readonly before: string;
  readonly after: string;
  readonly hash: string;
}

const contents = new WeakMap<Resource, Content>();
/** Content hashes received with resources (their canonical form was never needed here). */
const received = new WeakMap<Resource, string>();

function contentOf(r: Resource): Content {
  let c = contents.get(r);
  if (c === undefined) {
    const before: Record<string, unknown> = {};
    const after: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r)) if (k !== 'origin') (k < 'origin' ? before : after)[k] = v;
    const b = canonicalJson(before).slice(1, -1);
    const a = canonicalJson(after).slice(1, -1);
    c = { before: b, after: a, hash: digest(`{${b}${b !== '' && a !== '' ? ',' : ''}${a}}`) };
    contents.set(r, c);
  }
  return c;
}

/** canonicalJson(r), from its kept parts. */
function resourceJson(r: Resource): string {
  const c = contentOf(r);
  const members = [c.before, `"origin":${canonicalJson(r.origin)}`, c.after].filter((m) => m !== '');
  return `{${members.join(',')}}`;
}

/** The hash of everything in `r` but its origin. */
export function contentHash(r: Resource): string {
  return received.get(r) ?? contentOf(r).hash;
}

/** Records the content hash another thread or process computed and sent with `r`. */
export function rememberContentHash(r: Resource, hash: string): void {
  received.set(r, hash);
}

/** `r` is `base` read from another origin: it takes what was computed for `base`'s content. */
export function rememberSameContent(r: Resource, base: Resource): void {
  contents.set(r, contentOf(base));
}

/** Sets already hashed: the reload loop fingerprints a set and compile hashes the same object. */
const perSet = new WeakMap<ResourceSet, string>();

/** The content hash of a set (the snapshot's `hash`). Sets are immutable, so it is kept per set. */
export function hashResources(set: ResourceSet): string {
  let hash = perSet.get(set);
  if (hash === undefined) {
    // The sha256 of canonicalJson(set.resources), one resource at a time.
    const h = createHash('sha256').update('[');
    set.resources.forEach((r, i) => h.update(i === 0 ? resourceJson(r) : `,${resourceJson(r)}`));
    hash = h.update(']').digest('hex');
    perSet.set(set, hash);
  }
  return hash;
}

/** Records the set hash another thread or process computed and sent with `set`. */
export function rememberSetHash(set: ResourceSet, hash: string): void {
  perSet.set(set, hash);
}
