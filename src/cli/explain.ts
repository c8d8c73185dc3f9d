import { explainRequest } from '../snapshot/explain.ts';
import { explainPolicy } from '../dataplane/explain-filters.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import type { Options } from './flags.ts';
import { EXIT_FINDINGS, EXIT_OK, type CommandIO } from './io.ts';
import { loadFromFlags } from './load.ts';

/**
 * `sluice explain --config ... URL`: the URL's port is the Gateway server port the request
 * arrives on (default 80 for http, 443 for https); its host and port are the Host header unless
 * -H 'host: ...' says otherwise. Exit 1 when no route would answer (404 NR, a request refused
 * before routing such as 400 or 421, no listener).
 */
export async function runExplain(opts: Options, io: CommandIO): Promise<number> {
  const [target, ...extra] = opts.positionals;
  if (target === undefined || extra.length > 0)
    throw new SluiceError(
      'SLUICE_CLI_USAGE',
      'usage: sluice explain --config PATH [-H "k: v"] [-X METHOD] URL',
    );
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new SluiceError(
      'SLUICE_CLI_USAGE',
      `not a URL: ${JSON.stringify(target)} (e.g. http://shop.example.com:8080/cart)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new SluiceError('SLUICE_CLI_USAGE', `explain takes http:// or https:// URLs, got ${url.protocol}`);
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const port = url.port === '' ? (scheme === 'https' ? 443 : 80) : Number(url.port);
  const headers: Record<string, string> = {};
  for (const [k, v] of opts.headers) headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  const authority = headers['host'] ?? url.host;
  delete headers['host'];
  // URL parsing would resolve dot segments; explain must show the path the gateway receives.
  const rawTarget = target.slice(target.indexOf(url.host) + url.host.length) || '/';
  const path = rawTarget.split('#')[0] as string;

  const { snapshot } = await loadFromFlags(opts);
  const result = await explainRequest(
    snapshot,
    { port, authority, path, method: opts.method, headers, scheme },
    explainPolicy(snapshot),
  );
  if (opts.output === 'json') io.out(JSON.stringify(result, null, 2) + '\n');
  else io.out(result.lines.join('\n') + '\n');
  // No route answers: refused before routing (400, 421, no listener, no handshake) or 404 NR.
  return result.route === null ? EXIT_FINDINGS : EXIT_OK;
}
