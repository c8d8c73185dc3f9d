/**
 * ingress-nginx's auth-type basic (nginx auth_basic with an htpasswd file). Passwords are checked
 * with bcryptjs (asynchronously: a bcrypt check takes milliseconds and must not stall the event
 * loop) and apache-md5 ($apr1$); {SHA} and {PLAIN} with node:crypto. A header that passed once is
 * remembered (a bounded set of SHA-256 digests per filter), so a client sending the same
 * credentials pays the hash once.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import apacheMd5 from 'apache-md5';
import bcrypt from 'bcryptjs';
import type { BasicAuthFilter } from '../../snapshot/types.ts';
import type { FilterContext, FilterReply } from './filter.ts';

const UNAUTHORIZED = Buffer.from('401 Authorization Required');
const MAX_REMEMBERED = 1024;
const remembered = new WeakMap<BasicAuthFilter, Set<string>>();

function deny(f: BasicAuthFilter): FilterReply {
  return {
    status: 401,
    body: UNAUTHORIZED,
    headers: ['www-authenticate', `Basic realm="${f.realm.replaceAll('"', '\\"')}"`],
    flag: '-',
    details: 'ingress_basic_auth_denied',
  };
}

/** `Authorization: Basic …` → [user, password], or null. */
export function basicCredentials(header: string | undefined): readonly [string, string] | null {
  if (header === undefined) return null;
  const m = /^\s*basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (m === null) return null;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? null : [text.slice(0, colon), text.slice(colon + 1)];
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether `password` matches an htpasswd hash; a Promise for bcrypt. */
export function passwordMatches(password: string, hash: string): boolean | Promise<boolean> {
  if (hash.startsWith('$2')) return bcrypt.compare(password, hash.replace(/^\$2y\$/, '$2b$'));
  if (hash.startsWith('$apr1$')) return same(apacheMd5(password, hash), hash);
  if (hash.startsWith('{SHA}'))
    return same(`{SHA}${createHash('sha1').update(password).digest('base64')}`, hash);
  if (hash.startsWith('{PLAIN}')) return same(`{PLAIN}${password}`, hash);
  return false;
}

export function runBasicAuth(
  ctx: FilterContext,
  f: BasicAuthFilter,
): FilterReply | null | Promise<FilterReply | null> {
  const header = ctx.req.headers.authorization;
  const creds = basicCredentials(header);
  const hash = creds === null ? undefined : f.users.get(creds[0]);
  if (creds === null || hash === undefined) return deny(f);
  let seen = remembered.get(f);
  const key = createHash('sha256').update(header!).digest('base64');
  if (seen?.has(key) === true) return null;
  const remember = (ok: boolean): FilterReply | null => {
    if (!ok) return deny(f);
    if (seen === undefined) remembered.set(f, (seen = new Set()));
    if (seen.size >= MAX_REMEMBERED) seen.clear();
    seen.add(key);
    return null;
  };
  const ok = passwordMatches(creds[1], hash);
  return typeof ok === 'boolean' ? remember(ok) : ok.then(remember, () => deny(f));
}
