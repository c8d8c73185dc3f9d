/**
 * Every command-line flag in one table: name, SLUICE_* environment variable, default, help.
 * The table drives parsing, environment fallback, `--help` output and the README's CLI section,
 * so a flag cannot exist in one place and not the others.
 */
import { availableParallelism } from 'node:os';
import { parseDuration } from '../util/duration.ts';
import { SluiceError } from '../errors/sluice-error.ts';

export type FlagType = 'string' | 'list' | 'int' | 'duration' | 'boolean' | 'labels' | 'headers';

export interface FlagSpec {
  readonly name: string;
  readonly short?: string;
  readonly type: FlagType;
  /** Rendered in help; `undefined` = no default. */
  readonly defaultText?: string;
  readonly help: string;
  /** Commands that accept the flag. */
  readonly commands: readonly CommandName[];
}

export type CommandName =
  'serve' | 'validate' | 'routes' | 'explain' | 'certs' | 'quickstart' | 'egress' | 'convert';

const ALL_CONFIG: readonly CommandName[] = ['serve', 'validate', 'routes', 'explain'];
const SERVING: readonly CommandName[] = ['serve', 'quickstart'];

export const FLAGS: readonly FlagSpec[] = [
  {
    name: 'config',
    type: 'list',
    help: 'config file or directory (recursive *.yaml, *.yml, *.json); repeatable',
    commands: [...ALL_CONFIG, 'quickstart'],
  },
  {
    name: 'filename',
    short: 'f',
    type: 'list',
    help: 'Ingress file or directory to convert (with the Services and Secrets it uses); repeatable',
    commands: ['convert'],
  },
  {
    name: 'verify',
    type: 'boolean',
    help: 'serve the Ingresses and the converted Istio YAML side by side on loopback and report every answer that differs',
    commands: ['convert'],
  },
  {
    name: 'config-namespace',
    type: 'string',
    defaultText: 'default',
    help: 'namespace of documents that set none',
    commands: [...ALL_CONFIG, 'quickstart', 'convert'],
  },
  {
    name: 'namespace',
    type: 'string',
    defaultText: 'istio-system',
    help: "this gateway's own namespace (credentialName Secrets live here)",
    commands: [...ALL_CONFIG, 'quickstart', 'convert'],
  },
  {
    name: 'labels',
    type: 'labels',
    defaultText: 'istio=ingressgateway',
    help: "this gateway's workload labels k=v,...; Gateway and policy selectors match them",
    commands: [...ALL_CONFIG, 'quickstart', 'convert'],
  },
  {
    name: 'root-namespace',
    type: 'string',
    defaultText: 'istio-system',
    help: "Istio's root namespace for mesh-wide policy",
    commands: [...ALL_CONFIG, 'quickstart', 'convert'],
  },
  {
    name: 'ingress-class',
    type: 'string',
    defaultText: 'sluice; convert: nginx',
    help: "the Ingress class served (ingressClassName or kubernetes.io/ingress.class); nginx to take over ingress-nginx's",
    commands: [...ALL_CONFIG, 'quickstart', 'convert'],
  },
  {
    name: 'ingress-http-port',
    type: 'int',
    defaultText: '80',
    help: 'port Ingress objects are served on in plain HTTP',
    commands: [...ALL_CONFIG, 'quickstart', 'convert'],
  },
  {
    name: 'ingress-https-port',
    type: 'int',
    defaultText: '443',
    help: 'port Ingress objects with tls are served on in HTTPS (bound only when some Ingress has tls)',
    commands: [...ALL_CONFIG, 'quickstart', 'convert'],
  },
  {
    name: 'bind',
    type: 'string',
    defaultText: '0.0.0.0',
    help: 'address the Gateway ports listen on',
    commands: SERVING,
  },
  {
    name: 'status-port',
    type: 'int',
    defaultText: '15021',
    help: 'readiness and liveness port (/healthz/ready, /healthz/live)',
    commands: SERVING,
  },
  {
    name: 'metrics-port',
    type: 'int',
    defaultText: '15090',
    help: 'Prometheus port (/stats/prometheus)',
    commands: SERVING,
  },
  {
    name: 'admin-port',
    type: 'int',
    defaultText: '15000',
    help: 'admin port on loopback (/config_dump, /routes, /clusters, /egress/suggest); egress suggest asks it',
    commands: [...SERVING, 'egress'],
  },
  {
    name: 'certs-dir',
    type: 'string',
    defaultText: './certs',
    help: 'directory of <credentialName>/{tls.crt,tls.key,ca.crt}',
    commands: [...ALL_CONFIG, 'quickstart', 'convert'],
  },
  {
    name: 'log-level',
    type: 'string',
    defaultText: 'info',
    help: 'trace, debug, info, warn, error, fatal or silent',
    commands: [...ALL_CONFIG, 'quickstart', 'certs'],
  },
  {
    name: 'workers',
    type: 'int',
    defaultText: 'cores available',
    help: 'worker processes sharing the listen ports',
    commands: SERVING,
  },
  {
    name: 'drain-delay',
    type: 'duration',
    defaultText: '5s',
    help: 'after SIGTERM, keep accepting this long while readiness is 503',
    commands: SERVING,
  },
  {
    name: 'drain-timeout',
    type: 'duration',
    defaultText: '30s',
    help: 'the most in-flight requests may take after the drain delay',
    commands: SERVING,
  },
  {
    name: 'allow-empty-config',
    type: 'boolean',
    defaultText: 'false',
    help: 'accept a config change that leaves no Gateway server bound (refused otherwise, as an accident)',
    commands: SERVING,
  },
  {
    name: 'egress-proxy-port',
    type: 'int',
    help: 'open the egress forward proxy (absolute-form HTTP and CONNECT, ServiceEntry allowlist) on this port; over MeshConfig egressProxy.port; off unless set',
    commands: [...ALL_CONFIG, 'quickstart'],
  },
  {
    name: 'kubernetes',
    type: 'boolean',
    help: 'watch config from the Kubernetes API (in-cluster or KUBECONFIG)',
    commands: ['serve'],
  },
  {
    name: 'watch-namespace',
    type: 'list',
    defaultText: 'every namespace',
    help: 'with --kubernetes: watch only this namespace; repeatable',
    commands: ['serve'],
  },
  {
    name: 'kubeconfig',
    type: 'string',
    defaultText: 'KUBECONFIG, ~/.kube/config, else in-cluster',
    help: 'with --kubernetes: the kubeconfig file to use',
    commands: ['serve'],
  },
  {
    name: 'write-status',
    type: 'boolean',
    defaultText: 'false',
    help: 'with --kubernetes: write Events, and status (validationMessages, a sluice.dev/Accepted condition) by server-side apply (one replica, by Lease; needs RBAC)',
    commands: ['serve'],
  },
  {
    name: 'publish-service',
    type: 'string',
    help: "with --write-status: write this Service's address (NS/NAME) to the status.loadBalancer of served Ingresses, as ingress-nginx does",
    commands: ['serve'],
  },
  {
    name: 'publish-status-address',
    type: 'list',
    help: 'with --write-status: write these addresses (IP or hostname; repeatable or comma-separated) to the status.loadBalancer of served Ingresses, over --publish-service',
    commands: ['serve'],
  },
  { name: 'port', type: 'int', help: 'only this listener port', commands: ['routes'] },
  {
    name: 'output',
    short: 'o',
    type: 'string',
    defaultText: 'table',
    help: 'table or json (validate: text or json; convert: the directory to write)',
    commands: ['routes', 'validate', 'explain', 'convert'],
  },
  {
    name: 'header',
    short: 'H',
    type: 'headers',
    help: "request header 'name: value'; repeatable",
    commands: ['explain'],
  },
  {
    name: 'request',
    short: 'X',
    type: 'string',
    defaultText: 'GET',
    help: 'request method',
    commands: ['explain'],
  },
  { name: 'host', type: 'list', help: 'certificate host name; repeatable', commands: ['certs'] },
  { name: 'out', type: 'string', help: 'output directory', commands: ['certs'] },
  {
    name: 'help',
    short: 'h',
    type: 'boolean',
    help: 'show help',
    commands: ['serve', 'validate', 'routes', 'explain', 'certs', 'quickstart', 'egress', 'convert'],
  },
];

export function envName(flag: string): string {
  return `SLUICE_${flag.toUpperCase().replace(/-/g, '_')}`;
}

export interface Options {
  readonly config: readonly string[];
  readonly filename: readonly string[];
  readonly verify: boolean;
  readonly configNamespace: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly rootNamespace: string;
  readonly ingressClass: string;
  readonly ingressHttpPort: number;
  readonly ingressHttpsPort: number;
  readonly bind: string;
  readonly statusPort: number;
  readonly metricsPort: number;
  readonly adminPort: number;
  readonly certsDir: string;
  readonly logLevel: string;
  readonly workers: number;
  readonly drainDelayMs: number;
  readonly drainTimeoutMs: number;
  readonly allowEmptyConfig: boolean;
  /** Null = MeshConfig decides (off unless it sets egressProxy.port). */
  readonly egressProxyPort: number | null;
  readonly kubernetes: boolean;
  readonly watchNamespaces: readonly string[];
  readonly kubeconfig: string | null;
  readonly writeStatus: boolean;
  /** --publish-service NS/NAME, split; null when not given. */
  readonly publishService: { readonly namespace: string; readonly name: string } | null;
  readonly publishStatusAddresses: readonly string[];
  readonly port: number | null;
  readonly output: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly method: string;
  readonly hosts: readonly string[];
  readonly out: string | null;
  readonly help: boolean;
  /** Arguments that are not flags (explain's URL, certs' sub-command). */
  readonly positionals: readonly string[];
}

type Raw = Map<string, string[]>;

function usage(message: string): SluiceError {
  return new SluiceError('SLUICE_CLI_USAGE', message);
}

/** Splits argv into flag values (by long name) and positionals; validates names against the command. */
function scan(command: CommandName, argv: readonly string[]): { raw: Raw; positionals: string[] } {
  const raw: Raw = new Map();
  const positionals: string[] = [];
  const byShort = new Map(FLAGS.filter((f) => f.short).map((f) => [f.short as string, f]));
  const byName = new Map(FLAGS.map((f) => [f.name, f]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let spec: FlagSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq === -1 ? undefined : arg.slice(eq + 1);
      spec = byName.get(name);
      if (!spec) throw usage(`unknown flag --${name} (see sluice ${command} --help)`);
    } else if (arg.startsWith('-') && arg.length >= 2 && arg !== '-') {
      spec = byShort.get(arg.slice(1, 2));
      if (!spec) throw usage(`unknown flag ${arg} (see sluice ${command} --help)`);
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      positionals.push(arg);
      continue;
    }
    if (!spec.commands.includes(command)) throw usage(`--${spec.name} does not apply to sluice ${command}`);
    let value: string;
    if (spec.type === 'boolean') {
      value = inline ?? 'true';
    } else if (inline !== undefined) {
      value = inline;
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw usage(`--${spec.name} needs a value`);
      value = next;
      i++;
    }
    const list = raw.get(spec.name) ?? [];
    list.push(value);
    raw.set(spec.name, list);
  }
  return { raw, positionals };
}

/** NS/NAME → its parts; a usage error otherwise. */
function parseNamespacedName(
  flag: string,
  value: string | undefined,
): { namespace: string; name: string } | null {
  if (value === undefined) return null;
  const m = /^([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9.]*)$/.exec(value);
  if (m === null)
    throw new SluiceError('SLUICE_CLI_USAGE', `--${flag}: expected NAMESPACE/NAME, got "${value}"`);
  return { namespace: m[1]!, name: m[2]! };
}

function valuesOf(raw: Raw, env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const given = raw.get(name);
  if (given) return given;
  const fromEnv = env[envName(name)];
  if (fromEnv === undefined || fromEnv === '') return undefined;
  const spec = FLAGS.find((f) => f.name === name);
  // List-valued variables take comma- or path-separated values: SLUICE_CONFIG=a.yaml,dir/
  return spec && (spec.type === 'list' || spec.type === 'headers')
    ? fromEnv.split(spec.type === 'headers' ? '\n' : ',')
    : [fromEnv];
}

function last(raw: Raw, env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = valuesOf(raw, env, name);
  return v?.[v.length - 1];
}

function intFlag(raw: Raw, env: NodeJS.ProcessEnv, name: string, fallback: number): number;
function intFlag(raw: Raw, env: NodeJS.ProcessEnv, name: string, fallback: null): number | null;
function intFlag(raw: Raw, env: NodeJS.ProcessEnv, name: string, fallback: number | null): number | null {
  const v = last(raw, env, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v)) throw usage(`--${name}: expected a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

function portFlag(raw: Raw, env: NodeJS.ProcessEnv, name: string): number | null {
  const port = intFlag(raw, env, name, null);
  if (port !== null && (port < 1 || port > 65535)) throw usage(`--${name}: must be 1..65535, got ${port}`);
  return port;
}

function durationFlag(raw: Raw, env: NodeJS.ProcessEnv, name: string, fallbackMs: number): number {
  const v = last(raw, env, name);
  if (v === undefined) return fallbackMs;
  const parsed = parseDuration(v, { bareSeconds: true });
  if (!parsed.ok) throw usage(`--${name}: ${parsed.error}`);
  return parsed.ms;
}

export function parseLabels(text: string, flag = 'labels'): Record<string, string> {
  const out: Record<string, string> = {};
  if (text.trim() === '') return out;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw usage(`--${flag}: expected k=v[,k=v...], got ${JSON.stringify(part)}`);
    out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  if (colon <= 0) throw usage(`-H: expected 'name: value', got ${JSON.stringify(text)}`);
  return [text.slice(0, colon).trim().toLowerCase(), text.slice(colon + 1).trim()];
}

export function parseOptions(command: CommandName, argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const { raw, positionals } = scan(command, argv);
  const bool = (name: string): boolean => {
    const v = last(raw, env, name);
    if (v === undefined) return false;
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw usage(`--${name}: expected true or false, got ${JSON.stringify(v)}`);
  };
  const workers = intFlag(raw, env, 'workers', availableParallelism());
  if (workers < 1) throw usage('--workers: must be at least 1');
  return {
    config: valuesOf(raw, env, 'config') ?? [],
    filename: valuesOf(raw, env, 'filename') ?? [],
    verify: bool('verify'),
    configNamespace: last(raw, env, 'config-namespace') ?? 'default',
    namespace: last(raw, env, 'namespace') ?? 'istio-system',
    labels: parseLabels(last(raw, env, 'labels') ?? 'istio=ingressgateway'),
    rootNamespace: last(raw, env, 'root-namespace') ?? 'istio-system',
    // convert reads ingress-nginx's Ingresses: their class is nginx unless told otherwise.
    ingressClass: last(raw, env, 'ingress-class') ?? (command === 'convert' ? 'nginx' : 'sluice'),
    ingressHttpPort: intFlag(raw, env, 'ingress-http-port', 80),
    ingressHttpsPort: intFlag(raw, env, 'ingress-https-port', 443),
    bind: last(raw, env, 'bind') ?? '0.0.0.0',
    statusPort: intFlag(raw, env, 'status-port', 15021),
    metricsPort: intFlag(raw, env, 'metrics-port', 15090),
    adminPort: intFlag(raw, env, 'admin-port', 15000),
    certsDir: last(raw, env, 'certs-dir') ?? './certs',
    logLevel: last(raw, env, 'log-level') ?? 'info',
    workers,
    drainDelayMs: durationFlag(raw, env, 'drain-delay', 5000),
    drainTimeoutMs: durationFlag(raw, env, 'drain-timeout', 30000),
    allowEmptyConfig: bool('allow-empty-config'),
    egressProxyPort: portFlag(raw, env, 'egress-proxy-port'),
    kubernetes: bool('kubernetes'),
    watchNamespaces: valuesOf(raw, env, 'watch-namespace') ?? [],
    kubeconfig: last(raw, env, 'kubeconfig') ?? null,
    writeStatus: bool('write-status'),
    publishService: parseNamespacedName('publish-service', last(raw, env, 'publish-service')),
    publishStatusAddresses: (valuesOf(raw, env, 'publish-status-address') ?? [])
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== ''),
    port: intFlag(raw, env, 'port', null),
    output:
      last(raw, env, 'output') ?? (command === 'validate' ? 'text' : command === 'convert' ? '' : 'table'),
    headers: (valuesOf(raw, env, 'header') ?? []).map(parseHeader),
    method: last(raw, env, 'request') ?? 'GET',
    hosts: valuesOf(raw, env, 'host') ?? [],
    out: last(raw, env, 'out') ?? null,
    help: bool('help'),
    positionals,
  };
}

/** Help text for one command, generated from the table. */
export function flagHelp(command: CommandName): string {
  const rows = FLAGS.filter((f) => f.commands.includes(command)).map((f) => {
    const short = f.short ? `-${f.short}, ` : '';
    const arg =
      f.type === 'boolean' ? '' : ` ${f.type === 'duration' ? 'DURATION' : f.type === 'int' ? 'N' : 'VALUE'}`;
    const def = f.defaultText ? ` (default ${f.defaultText})` : '';
    return [`  ${short}--${f.name}${arg}`, `${f.help}${def} [${envName(f.name)}]`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => l.padEnd(width) + r).join('\n');
}
