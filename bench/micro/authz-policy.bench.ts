/**
 * AuthorizationPolicy rules per request (snapshot/policy.ts decideRbac), on the security bench's
 * DENY policy of 50 path rules (bench/configs/security.ts: exact, prefix, suffix and `{*}`
 * templates), none matching the bench request, so every request runs all 50; then each kind of
 * path value alone, 10 rules of it.
 */
import { decideRbac } from '../../src/snapshot/policy.ts';
import { admitRequest } from '../../src/snapshot/route-request.ts';
import type { RbacFilter } from '../../src/snapshot/types.ts';
import { BENCH_REQUEST, generateConfig, render } from '../configs/generate.ts';
import { denyPaths, denyPolicyDoc } from '../configs/security.ts';
import { compileBenchYaml, loopbackRequest } from '../lib/compile-yaml.ts';
import { bench } from './timing.ts';

const headers = Object.fromEntries(
  Object.entries(BENCH_REQUEST.headers).map(([k, v]) => [k.toLowerCase(), v]),
);
const base = generateConfig('one-rule', { gatewayPort: 8080, upstreamPort: 18081, decoyPort: 9 }).text;

function run(name: string, paths: readonly string[]): void {
  const text = `${base}---\n${render([denyPolicyDoc(paths)])}`;
  const snapshot = compileBenchYaml(text);
  const req = loopbackRequest(headers);
  if (admitRequest(req, snapshot, BENCH_REQUEST.path, `${BENCH_REQUEST.host}:8080`, '') !== null)
    throw new Error('refused');
  const filter = req.table?.filters?.find((f): f is RbacFilter => f.kind === 'rbac');
  if (filter?.policies[0]?.rules.length !== paths.length)
    throw new Error(`no DENY filter of ${paths.length} rules`);
  bench(name, () => {
    const v = decideRbac(filter, req);
    if (v.kind !== 'allow') throw new Error(`expected allow, got ${v.kind}`);
    return v;
  });
}

const paths = denyPaths();
run('decideRbac, DENY 50 path rules (none match)', paths);
['exact', 'prefix', 'suffix', '{*} template', 'exact /bench/item/N'].forEach((kind, k) =>
  run(
    `decideRbac, DENY 10 rules: ${kind}`,
    paths.filter((_, i) => i % 5 === k),
  ),
);
