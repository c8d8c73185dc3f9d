import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDocuments } from '../../../src/config/parse-documents.ts';
import { readCommonYaml } from '../../../src/config/read-common-yaml.ts';
import { readingDifferences } from '../../support/same-reading.ts';

const root = path.resolve(import.meta.dirname, '../../..');

function configFiles(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ya?ml|json)$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

describe('the fast YAML reader', () => {
  const files = ['gateways', 'test/golden/cases', 'test/unit/config/fixtures', 'deploy'].flatMap(configFiles);

  it.each(files.map((f) => [path.relative(root, f), f]))(
    'reads %s as `yaml` does, or leaves it to `yaml`',
    (_, f) => {
      const diffs = readingDifferences(f, readFileSync(f, 'utf8'));
      if (diffs !== 'declined') expect(diffs).toEqual([]);
    },
  );

  it('takes most of the project’s own config files', () => {
    const read = files.filter((f) => readingDifferences(f, readFileSync(f, 'utf8')) !== 'declined');
    expect(read.length).toBeGreaterThan(files.length * 0.8);
  });

  // Scalars in every style the core schema resolves, and the shapes Istio config uses.
  const same: readonly (readonly [string, string])[] = [
    [
      'numbers',
      'a: 0o17\nb: 0x1F\nc: 1e3\nd: -1.5\ne: 012\nf: +12\ng: 1_000\nh: 0b11\ni: .5\nj: 9007199254740993\n',
    ],
    ['specials', 'a: .inf\nb: -.Inf\nc: .nan\nd: ~\ne: Null\nf: yes\ng: off\nh: TRUE\ni: 2024-01-01\nj:\n'],
    [
      'strings',
      "a: 'it''s'\nb: \"tab\\tnew\\nline \\u00e9\"\nc: plain text:with colon, url http://x\nd: '#not comment'\ne: a # comment\n",
    ],
    ['blocks', 'a: |\n  x\n   y\n\nb: >-\n  p\n  q\n\n  r\nc: |+\n  keep\n\nd: |2\n    indented\n'],
    ['multi-line plain', 'a: one\n  two\n  three\nb: "quoted\n  folded"\n'],
    ['flow on one line', 'a: [x, "y", 1, {k: v}]\nb: {p: [1, 2], q: {}}\nc: []\n'],
    ['nesting', 'a:\n  - b:\n      - c: 1\n        d: [e]\n  - - f\n    - g\n'],
    ['documents', '---\na: 1\n---\n---\n# only a comment\n---\nb: 2\n---\n'],
    [
      'list kind',
      'apiVersion: v1\nkind: List\nitems:\n  - kind: A\n    metadata: {name: a}\n  - null\n  - kind: B\n',
    ],
    ['json', '{\n  "apiVersion": "v1",\n  "kind": "X",\n  "spec": {"a": [1, 2.5, true, null, "s"]}\n}\n'],
    ['crlf', 'a: 1\r\nb:\r\n  - c\r\n'],
    ['snake_case keys', 'spec:\n  sni_hosts: [a]\n  tls_mode: x\n'],
    ['empty', ''],
    ['comments only', '# a\n# b\n'],
    ['merge key as a plain key', '<<: {a: 1}\nb: 2\n'],
  ];
  it.each(same)('reads %s as `yaml` does', (_, text) => {
    expect(readingDifferences('x.yaml', text)).toEqual([]);
  });

  // What the fast reader leaves to `yaml`, which then gives today's values, warnings and errors.
  const declined: readonly (readonly [string, string])[] = [
    ['anchors and aliases', 'a: &x {b: 1}\nc: *x\n'],
    ['tags', 'a: !Ref b\n'],
    ['directives', '%YAML 1.2\n---\na: 1\n'],
    ['an explicit document end', 'a: 1\n...\n---\nb: 2\n'],
    ['an implicit pair in a flow sequence (IPv6 addresses)', 'addresses: [1.2.3.4, 2001:db8::]\n'],
    ['a number key', '1: a\n'],
    ['a boolean key', 'true: a\n'],
    ['a null key', 'null: a\n'],
    ['a __proto__ key', '__proto__: {polluted: true}\n'],
    ['a quoted __proto__ key', '"__proto__": {polluted: true}\n'],
    ['a collection key', '? [a]\n: b\n'],
    ['duplicate keys', 'a: 1\na: 2\n'],
    ['a flow collection across lines in a block', 'a: [\n  b,\n  c\n]\n'],
    ['a syntax error', 'a: [b\nc: d\n'],
    ['bad indentation', 'a:\n  b: 1\n c: 2\n'],
  ];
  it.each(declined)('leaves %s to `yaml`', (_, text) => {
    expect(readCommonYaml(text)).toBeNull();
  });

  it('still reports what `yaml` reports for declined files', () => {
    const dup = parseDocuments('x.yaml', 'a: 1\na: 2\n');
    expect(dup.diagnostics.map((d) => [d.level, d.code, d.line])).toEqual([
      ['error', 'SLUICE_CONFIG_PARSE', 2],
    ]);
    expect(dup.diagnostics[0]?.message).toMatch(/unique/);
    const ipv6 = parseDocuments('x.yaml', 'addresses: [1.2.3.4, 2001:db8::]\n');
    expect(ipv6.documents[0]?.value).toEqual({ addresses: ['1.2.3.4', '2001:db8::'] });
  });

  it('reads a large multi-document file as `yaml` does', () => {
    const doc = (i: number): string =>
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: v${i}\n  namespace: ns\n` +
      `spec:\n  hosts: [h${i}.example.com]\n  http:\n    - match:\n        - uri: {prefix: /a}\n          headers:\n            x: {exact: "1"}\n` +
      `      route:\n        - destination: {host: b${i}, subset: v1}\n          weight: 90\n        - destination: {host: b${i}, subset: v2}\n          weight: 10\n`;
    const text = Array.from({ length: 2000 }, (_, i) => doc(i)).join('---\n');
    expect(parseDocuments('x.yaml', text).documents).toHaveLength(2000);
    expect(readingDifferences('x.yaml', text)).toEqual([]);
  });
});
