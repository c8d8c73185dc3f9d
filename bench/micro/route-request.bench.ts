/**
 * The routing decision per request (snapshot/route-request.ts): target, authority check, host key,
 * path normalisation, route table, vhost, route, on the bench's one-rule and 100-rule configs
 * (bench/configs/generate.ts; the 100-rule request runs through 11 failing rules first).
 */
import { admitRequest, selectRoute, undecidedRequest } from '../../src/snapshot/route-request.ts';
import { BENCH_REQUEST, generateConfig } from '../configs/generate.ts';
import { compileBenchYaml } from '../lib/compile-yaml.ts';
import { bench } from './timing.ts';

const headers = Object.fromEntries(
  Object.entries(BENCH_REQUEST.headers).map(([k, v]) => [k.toLowerCase(), v]),
);
for (const shape of ['one-rule', 'many-rules'] as const) {
  const cfg = generateConfig(shape, { gatewayPort: 8080, upstreamPort: 18081, decoyPort: 9 });
  const snapshot = compileBenchYaml(cfg.text);
  const r = undecidedRequest('GET', 'http', 8080, headers);
  const hostHeader = BENCH_REQUEST.host + ':8080';
  bench(`admitRequest + selectRoute (${shape})`, () => {
    if (admitRequest(r, snapshot, BENCH_REQUEST.path, hostHeader, '') !== null) throw new Error('refused');
    if (selectRoute(r) !== null) throw new Error('no route');
    return r.route;
  });
}
