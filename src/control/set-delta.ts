/**
 * How a ResourceSet travels from the thread that read it to the event loop that serves it, and
 * from the primary to each worker: as edits of the set the receiver holds, by position. Runs of
 * resources the receiver holds go as ranges; a run that only moved in its file (the documents
 * after an edited one) goes as its range and how many lines and documents it moved; a resource
 * whose content the receiver holds but was read from elsewhere goes as that position and its new
 * origin; only the rest goes whole. A change to one document of a 65,000-document file is then a
 * few edits, and the receiver keeps its objects (and compile/reuse.ts the routes built from them)
 * for everything unchanged.
 *
 * A sender keeps what its receiver holds: the set it sent last. Messages must arrive in order,
 * every one (a thread's port, a worker's IPC channel); a receiver that starts again needs a sender
 * that starts again (reset()). The set's hash and each new resource's content hash travel along,
 * so no receiver hashes what it was sent (model/content-hash.ts).
 */
import { contentHash, hashResources, rememberContentHash, rememberSetHash } from '../model/content-hash.ts';
import type { Origin, Resource, ResourceSet } from '../model/resource.ts';

export type DeltaEdit =
  /** The receiver's resources [at, at + count), as they are. */
  | { readonly at: number; readonly count: number }
  /** The same, each read `lines` lines and `docs` documents further down the same file. */
  | { readonly at: number; readonly count: number; readonly lines: number; readonly docs: number }
  /** The receiver's resource `at`, read from `origin`. */
  | { readonly at: number; readonly origin: Origin }
  /** A resource the receiver does not hold, with its content hash. */
  | { readonly content: string; readonly resource: Resource };

export interface SetDelta {
  /** hashResources() of the set. */
  readonly hash: string;
  readonly edits: readonly DeltaEdit[];
}

export interface DeltaSender {
  encode(set: ResourceSet): SetDelta;
  /** The receiver holds nothing (it started again, or could not decode). */
  reset(): void;
}

/** How far `b` is from `a` down the same file, or null when it is not just that. */
function shiftOf(a: Origin, b: Origin): { lines: number; docs: number } | null {
  if (a.kind !== 'file' || b.kind !== 'file' || a.file !== b.file) return null;
  if (a.line === undefined || b.line === undefined) return null;
  return { lines: b.line - a.line, docs: b.doc - a.doc };
}

export function createDeltaSender(): DeltaSender {
  /** What the receiver holds, by position: each resource's content hash and origin. */
  let held: { readonly content: string; readonly origin: Origin }[] = [];
  let byContent = new Map<string, number>();
  return {
    encode(set) {
      const edits: DeltaEdit[] = [];
      const nextHeld: { content: string; origin: Origin }[] = [];
      const nextByContent = new Map<string, number>();
      const extend = (at: number, lines: number | null, docs: number): void => {
        const last = edits[edits.length - 1];
        if (last !== undefined && 'count' in last && last.at + last.count === at) {
          const sameShift =
            lines === null
              ? !('lines' in last)
              : 'lines' in last && last.lines === lines && last.docs === docs;
          if (sameShift) {
            edits[edits.length - 1] = { ...last, count: last.count + 1 };
            return;
          }
        }
        edits.push(lines === null ? { at, count: 1 } : { at, count: 1, lines, docs });
      };
      for (const r of set.resources) {
        const content = contentHash(r);
        const at = byContent.get(content);
        const was = at === undefined ? undefined : held[at];
        if (at === undefined || was === undefined) edits.push({ content, resource: r });
        else {
          const shift = shiftOf(was.origin, r.origin);
          if (shift !== null && shift.lines === 0 && shift.docs === 0) extend(at, null, 0);
          else if (shift !== null) extend(at, shift.lines, shift.docs);
          else edits.push({ at, origin: r.origin });
        }
        nextByContent.set(content, nextHeld.length);
        nextHeld.push({ content, origin: r.origin });
      }
      held = nextHeld;
      byContent = nextByContent;
      return { hash: hashResources(set), edits };
    },
    reset() {
      held = [];
      byContent = new Map();
    },
  };
}

export interface DeltaReceiver {
  /** The set the delta describes; throws (holding nothing) if it names a resource not held. */
  decode(delta: SetDelta): ResourceSet;
}

export function createDeltaReceiver(): DeltaReceiver {
  let held: readonly Resource[] = [];
  return {
    decode(delta) {
      const resources: Resource[] = [];
      const take = (at: number): Resource => {
        const r = held[at];
        if (r === undefined) {
          held = [];
          throw new Error(`the delta names resource ${at}, which this side does not hold`);
        }
        return r;
      };
      /** `base` read from `origin`: the same content, so the same content hash. */
      const moved = (base: Resource, origin: Origin): Resource => {
        const r: Resource = { ...base, origin };
        rememberContentHash(r, contentHash(base));
        return r;
      };
      for (const e of delta.edits) {
        if ('resource' in e) {
          rememberContentHash(e.resource, e.content);
          resources.push(e.resource);
        } else if (!('count' in e)) resources.push(moved(take(e.at), e.origin));
        else if (!('lines' in e)) {
          if (e.at + e.count > held.length) take(e.at + e.count - 1);
          for (let i = e.at; i < e.at + e.count; i++) resources.push(held[i] as Resource);
        } else
          for (let i = e.at; i < e.at + e.count; i++) {
            const base = take(i);
            const o = base.origin as Extract<Origin, { kind: 'file' }>;
            resources.push(moved(base, { ...o, doc: o.doc + e.docs, line: (o.line ?? 0) + e.lines }));
          }
      }
      held = resources;
      const set: ResourceSet = { resources };
      rememberSetHash(set, delta.hash);
      return set;
    },
  };
}
