/**
 * `sluice convert ingress -f FILE|DIR [-o DIR] [--verify]`: ingress-nginx Ingresses → Istio YAML
 * through the same translation `serve` uses, commented, with a summary of what differs and what
 * could not be expressed. Exit 0 when everything was expressed, 1 otherwise; the output is
 * written either way.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GENERATED_FROM } from '../config/ingress/index.ts';
import { formatDiagnostic, sortDiagnostics } from '../errors/diagnostic.ts';
import { SluiceError } from '../errors/sluice-error.ts';
import { renderConversion, renderSummary } from './convert-yaml.ts';
import type { Options } from './flags.ts';
import { EXIT_FINDINGS, EXIT_OK, type CommandIO } from './io.ts';
import { readSourcesFromFlags } from './load.ts';

export async function runConvert(opts: Options, io: CommandIO): Promise<number> {
  const [what, ...more] = opts.positionals;
  if (what !== 'ingress' || more.length > 0)
    throw new SluiceError(
      'SLUICE_CLI_USAGE',
      'usage: sluice convert ingress -f FILE|DIR [-o DIR] [--verify]',
    );
  if (opts.filename.length === 0)
    throw new SluiceError('SLUICE_CLI_USAGE', 'no -f given (a file or directory of Ingress YAML)');
  const update = await readSourcesFromFlags(opts, opts.filename, true);
  const all = update.resources.resources;
  const generated = all.filter((r) => r.annotations[GENERATED_FROM] !== undefined);
  const ingresses = new Map(
    all.filter((r) => r.kind === 'Ingress').map((r) => [`${r.namespace}/${r.name}`, r]),
  );
  const out = renderConversion(generated, ingresses, {
    selector: opts.labels,
    gatewayNamespace: opts.namespace,
  });
  const about = sortDiagnostics(update.diagnostics).filter((d) => d.subject?.kind === 'Ingress');
  // An annotation or path Istio YAML cannot carry is lost in the conversion; other findings
  // (a Service not in the files) are the same either way and only shown.
  const lostCodes = new Set(['SLUICE_INGRESS_ANNOTATION', 'SLUICE_INGRESS_REFUSED', 'SLUICE_REGEX_INVALID']);
  const lost = about.filter((d) => lostCodes.has(d.code)).map((d) => `NOT EXPRESSED ${formatDiagnostic(d)}`);
  const shown = about
    .filter((d) => !lostCodes.has(d.code))
    .map(
      (d) =>
        `${d.level === 'info' ? 'skipped' : 'note'}${' '.repeat(d.level === 'info' ? 7 : 10)}${formatDiagnostic(d)}`,
    );
  const summary =
    `${ingresses.size} Ingress(es) read, ${generated.length} Istio resource(s) written\n` +
    shown.map((l) => l + '\n').join('') +
    renderSummary(out.notes, lost);
  const header = `# Istio resources converted from ingress-nginx Ingresses by sluice convert ingress.\n# Review the comments: each says where a block came from and where Istio's meaning differs.\n`;
  const yaml = header + out.yaml;
  if (opts.output === '') {
    io.out(yaml);
    io.err(summary);
  } else {
    await mkdir(opts.output, { recursive: true });
    await writeFile(path.join(opts.output, 'istio.yaml'), yaml);
    await writeFile(path.join(opts.output, 'summary.txt'), summary);
    io.out(summary);
  }
  let differences = 0;
  if (opts.verify) {
    const { verifyConversion } = await import('./convert-verify.ts');
    // The report goes where the summary went: stderr when the YAML is on stdout.
    const report: CommandIO = opts.output === '' ? { ...io, out: io.err } : io;
    differences = await verifyConversion(update.resources, out.documents, opts, report);
  }
  const failed = out.notes.some((n) => n.kind === 'not-expressed') || lost.length > 0 || differences > 0;
  return failed ? EXIT_FINDINGS : EXIT_OK;
}
