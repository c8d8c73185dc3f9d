#!/usr/bin/env node
/**
 * The sluice binary: argv → one command. The only place that calls process.exit.
 */
import { readFileSync } from 'node:fs';
import { flagHelp, parseOptions, type CommandName } from './cli/flags.ts';
import { EXIT_FAULT, EXIT_OK, EXIT_USAGE, type CommandIO } from './cli/io.ts';
import { isSluiceError } from './errors/sluice-error.ts';

const COMMANDS: Record<CommandName, string> = {
  serve: 'run the gateway on config files (--config) or the Kubernetes API (--kubernetes)',
  validate: 'load, validate and compile config; print every problem; exit 1 on errors',
  routes: 'print the compiled routing table (port, host, match, action, destinations)',
  explain: 'say which server, VirtualService and rule a request would hit, and why earlier ones did not',
  certs: 'certs self-signed --host H ... --out DIR: make a development CA and server certificate',
  quickstart: 'start demo upstreams on loopback and serve the examples in gateways/ (npm start)',
  egress:
    'egress suggest: the ServiceEntry YAML that would allow what the egress proxy blocked in learning mode (asks the running gateway on --admin-port)',
  convert:
    'convert ingress -f FILE|DIR [-o DIR] [--verify]: ingress-nginx Ingresses to commented Istio YAML; exit 1 if something could not be expressed',
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  return [
    'sluice: an Istio-compatible ingress/egress gateway',
    '',
    'Usage: sluice <command> [flags]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([c, h]) => `  ${c.padEnd(width)}${h}`),
    '',
    'Every flag also reads SLUICE_<FLAG> from the environment (SLUICE_LOG_LEVEL=debug).',
    "Run 'sluice <command> --help' for its flags. Exit codes: 0 ok, 1 findings (validate errors,",
    'explain without a route), 2 usage error, 3 process fault (port in use, unreadable config).',
  ].join('\n');
}

async function run(argv: readonly string[], io: CommandIO): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    io.out(mainHelp() + '\n');
    return first === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (first === '--version' || first === '-v' || first === 'version') {
    io.out(`sluice ${version()} (node ${process.version})\n`);
    return EXIT_OK;
  }
  if (!(first in COMMANDS)) {
    io.err(`sluice: unknown command ${JSON.stringify(first)}\n\n${mainHelp()}\n`);
    return EXIT_USAGE;
  }
  const command = first as CommandName;
  if (rest.includes('--version')) {
    io.out(`sluice ${version()} (node ${process.version})\n`);
    return EXIT_OK;
  }
  const opts = parseOptions(command, rest, io.env);
  if (opts.help) {
    io.out(`sluice ${command}: ${COMMANDS[command]}\n\nFlags:\n${flagHelp(command)}\n`);
    return EXIT_OK;
  }
  switch (command) {
    case 'validate':
      return (await import('./cli/validate.ts')).runValidate(opts, io);
    case 'routes':
      return (await import('./cli/routes.ts')).runRoutes(opts, io);
    case 'explain':
      return (await import('./cli/explain.ts')).runExplain(opts, io);
    case 'certs':
      return (await import('./cli/certs.ts')).runCerts(opts, io);
    case 'serve':
      return (await import('./cli/serve-process.ts')).serveUntilSignalled(opts);
    case 'quickstart':
      return (await import('./cli/quickstart.ts')).runQuickstart(opts);
    case 'egress':
      return (await import('./cli/egress.ts')).runEgress(opts, io);
    case 'convert':
      return (await import('./cli/convert.ts')).runConvert(opts, io);
  }
}

const io: CommandIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
};

try {
  const code = await run(process.argv.slice(2), io);
  // Servers resolve only once drained (or on a second signal); exit even if a socket lingers.
  process.exit(code);
} catch (err) {
  if (isSluiceError(err)) {
    io.err(`sluice: ${err.message} [${err.code}]\n`);
    process.exit(err.code === 'SLUICE_CLI_USAGE' ? EXIT_USAGE : EXIT_FAULT);
  }
  io.err(`sluice: unexpected failure: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(EXIT_FAULT);
}
