/**
 * Server-side apply for the fake API server (test/support/fake-kube-api.ts), as
 * structured-merge-diff does it for the fields sluice writes: each field manager owns the leaf
 * fields of its last applied configuration; applying sets them, and removes the fields the manager
 * owned before and no longer applies (unless another manager owns them too); a field another
 * manager owns with a different value is a conflict (409) unless `force`, which takes it over.
 * Lists named in `MAP_LISTS` are `x-kubernetes-list-type: map` (each item owned by its key, so two
 * managers' items coexist); every other list is atomic (owned whole).
 */

type Json = unknown;
type Tree = Record<string, Json>;

/** `x-kubernetes-list-type: map` lists and their key field, by path (dot-joined object keys). */
const MAP_LISTS: Readonly<Record<string, string>> = {
  'status.conditions': 'type',
  'status.validationMessages': 'documentationUrl',
};

/** One path segment: an object key, or a map-list item by its key value. */
type Segment = string | { readonly key: string; readonly value: string };

const pathKey = (path: readonly Segment[]): string => JSON.stringify(path);
const fieldPath = (path: readonly Segment[]): string =>
  path.map((s) => (typeof s === 'string' ? `.${s}` : `[${s.key}=${s.value}]`)).join('');
const namesOf = (path: readonly Segment[]): string =>
  path.filter((s): s is string => typeof s === 'string').join('.');

/** The leaf fields of an applied configuration: path → value. */
function leaves(node: Json, path: Segment[], out: Map<string, { path: Segment[]; value: Json }>): void {
  const listKey = MAP_LISTS[namesOf(path)];
  if (Array.isArray(node) && listKey !== undefined) {
    // The key field is the item's name, not a field of its own.
    for (const item of node) {
      const { [listKey]: key, ...rest } = item as Tree;
      leaves(rest, [...path, { key: listKey, value: String(key) }], out);
    }
    return;
  }
  if (typeof node === 'object' && node !== null && !Array.isArray(node) && Object.keys(node).length > 0) {
    for (const [k, v] of Object.entries(node)) leaves(v, [...path, k], out);
    return;
  }
  out.set(pathKey(path), { path, value: node });
}

function itemIndex(list: Json[], seg: { key: string; value: string }): number {
  return list.findIndex((i) => String((i as Tree)[seg.key]) === seg.value);
}

function getAt(root: Tree, path: readonly Segment[]): Json {
  let node: Json = root;
  for (const seg of path) {
    if (typeof seg === 'string') {
      if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
      node = (node as Tree)[seg];
    } else {
      if (!Array.isArray(node)) return undefined;
      node = node[itemIndex(node, seg)];
    }
  }
  return node;
}

function setAt(root: Tree, path: readonly Segment[], value: Json): void {
  let node: Json = root;
  path.forEach((seg, i) => {
    const last = i === path.length - 1;
    const next = path[i + 1];
    const fresh = (): Json => (next !== undefined && typeof next !== 'string' ? [] : {});
    if (typeof seg === 'string') {
      const obj = node as Tree;
      if (last) obj[seg] = structuredClone(value);
      else {
        if (typeof obj[seg] !== 'object' || obj[seg] === null) obj[seg] = fresh();
        node = obj[seg];
      }
    } else {
      const list = node as Json[];
      let at = itemIndex(list, seg);
      if (at < 0) at = list.push({ [seg.key]: seg.value }) - 1;
      if (last) list[at] = { [seg.key]: seg.value, ...(structuredClone(value) as Tree) };
      else node = list[at];
    }
  });
}

/** Removes a leaf, then every object or map-list item it leaves empty (a key alone is empty). */
function deleteAt(root: Tree, path: readonly Segment[]): void {
  for (let depth = path.length; depth > 0; depth--) {
    const parent = getAt(root, path.slice(0, depth - 1));
    const seg = path[depth - 1]!;
    const child = getAt(root, path.slice(0, depth));
    const empty =
      depth === path.length ||
      (typeof child === 'object' &&
        child !== null &&
        (Array.isArray(child)
          ? child.length === 0
          : Object.keys(child).every((k) => typeof seg !== 'string' && k === seg.key)));
    if (!empty) return;
    if (typeof seg === 'string') delete (parent as Tree)[seg];
    else (parent as Json[]).splice(itemIndex(parent as Json[], seg), 1);
  }
}

/** Field managers' sets of owned leaf paths, kept per object. */
export type Managed = Map<string, Set<string>>;

export type ApplyResult =
  { readonly ok: true; readonly obj: Tree } | { readonly ok: false; readonly conflicts: string[] };

/**
 * Applies `applied` (an apply configuration) for `manager` over `live`, within `scope` (the
 * top-level fields the endpoint may change: `status` on the status subresource).
 */
export function serverSideApply(
  live: Tree,
  applied: Tree,
  managed: Managed,
  opts: { readonly manager: string; readonly force: boolean; readonly scope: string },
): ApplyResult {
  const wanted = new Map<string, { path: Segment[]; value: Json }>();
  leaves(applied[opts.scope] ?? {}, [opts.scope], wanted);
  // An empty apply configuration for the scope owns nothing.
  for (const [k, v] of wanted) if (v.path.length === 1) wanted.delete(k);
  const conflicts: string[] = [];
  for (const [k, { path, value }] of wanted)
    for (const [other, owned] of managed)
      if (
        other !== opts.manager &&
        owned.has(k) &&
        JSON.stringify(getAt(live, path)) !== JSON.stringify(value)
      ) {
        if (opts.force) owned.delete(k);
        else conflicts.push(`conflict with "${other}": ${fieldPath(path)}`);
      }
  if (conflicts.length > 0) return { ok: false, conflicts };
  const next = structuredClone(live);
  const before = managed.get(opts.manager) ?? new Set<string>();
  for (const k of before) {
    if (wanted.has(k) || [...managed].some(([m, owned]) => m !== opts.manager && owned.has(k))) continue;
    deleteAt(next, JSON.parse(k) as Segment[]);
  }
  for (const { path, value } of wanted.values()) setAt(next, path, value);
  managed.set(opts.manager, new Set(wanted.keys()));
  return { ok: true, obj: next };
}
