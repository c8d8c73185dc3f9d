/**
 * Differences between the fast YAML reader and the `yaml` library on one file: none when the fast
 * reader declines the file (the caller then uses `yaml` itself) or reads it exactly as `yaml`
 * does: same documents, positions, values, no diagnostic from `yaml`, and the same line for
 * every field path.
 */
import { parseDocuments, parseWithYaml, type ParsedDocument } from '../../src/config/parse-documents.ts';
import { readCommonYaml } from '../../src/config/read-common-yaml.ts';

type Path = readonly (string | number)[];

function pathsOf(value: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...pathsOf(v, [...prefix, i])));
  else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) out.push(...pathsOf(v, [...prefix, k]));
  // A path that goes one step too far: the line of the deepest part that exists.
  out.push([...prefix, 'absent']);
  return out;
}

const describeDoc = (d: ParsedDocument): string => `#${d.doc}@${d.line}`;

/** 'declined' when the fast reader leaves the file to `yaml`; else every difference found. */
export function readingDifferences(file: string, text: string): 'declined' | string[] {
  if (readCommonYaml(text) === null) return 'declined';
  const fast = parseDocuments(file, text);
  const slow = parseWithYaml(file, text);
  const diffs: string[] = [];
  if (slow.diagnostics.length > 0)
    diffs.push(
      `yaml reports ${slow.diagnostics.map((d) => d.message).join('; ')} but the fast reader read it`,
    );
  if (fast.documents.length !== slow.documents.length)
    diffs.push(`${fast.documents.length} documents, yaml ${slow.documents.length}`);
  slow.documents.forEach((s, i) => {
    const f = fast.documents[i];
    if (f === undefined) return;
    if (f.doc !== s.doc || f.line !== s.line)
      diffs.push(`document ${describeDoc(f)}, yaml ${describeDoc(s)}`);
    if (JSON.stringify(f.value) !== JSON.stringify(s.value))
      diffs.push(
        `document ${describeDoc(s)}: value ${JSON.stringify(f.value)}, yaml ${JSON.stringify(s.value)}`,
      );
    for (const p of pathsOf(s.value)) {
      const a = f.lineOf(p);
      const b = s.lineOf(p);
      if (a !== b) diffs.push(`document ${describeDoc(s)} ${JSON.stringify(p)}: line ${a}, yaml ${b}`);
    }
  });
  return diffs;
}
