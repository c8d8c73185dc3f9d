import { describe, expect, it } from 'vitest';
import { parseDocuments } from '../../../src/config/parse-documents.ts';
import { formatDiagnostic } from '../../../src/errors/diagnostic.ts';

const MULTI = `# leading comment
apiVersion: v1
kind: Service
metadata:
  name: a
---
---
# only a comment
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts: [shop.example.com]
  http:
  - route:
    - destination:
        host: a
    - destination:
        host: b
      weight: 150
`;

describe('parseDocuments', () => {
  it('splits documents, numbers them as written and skips empty ones', () => {
    const { documents, diagnostics } = parseDocuments('x.yaml', MULTI);
    expect(diagnostics).toEqual([]);
    expect(documents.map((d) => [d.doc, d.line])).toEqual([
      [1, 2],
      [4, 10],
    ]);
    expect((documents[1]!.value as { kind: string }).kind).toBe('VirtualService');
  });

  it('finds the line of a field path, or of its deepest existing parent', () => {
    const vs = parseDocuments('x.yaml', MULTI).documents[1]!;
    expect(vs.lineOf(['spec', 'http', 0, 'route', 1, 'weight'])).toBe(22);
    expect(vs.lineOf(['spec', 'http', 0, 'route', 1])).toBe(20);
    expect(vs.lineOf(['spec', 'hosts'])).toBe(15);
    expect(vs.lineOf(['spec', 'http', 0, 'timeout'])).toBe(17);
    expect(vs.lineOf([])).toBe(10);
  });

  it('reports syntax errors with file#doc:line and keeps the other documents', () => {
    const { documents, diagnostics } = parseDocuments(
      'bad.yaml',
      'a: 1\n---\nb: [1, 2\nc: 3\n---\nkind: x\n',
    );
    expect(documents.map((d) => d.doc)).toEqual([1, 3]);
    expect(diagnostics.length).toBeGreaterThan(0);
    expect(diagnostics[0]!.code).toBe('SLUICE_CONFIG_PARSE');
    expect(formatDiagnostic(diagnostics[0]!)).toMatch(
      /^error {3}bad\.yaml#2:\d+ YAML document: .+ \[SLUICE_CONFIG_PARSE\]$/,
    );
  });

  it('reports duplicate keys', () => {
    const { documents, diagnostics } = parseDocuments('dup.yaml', 'a: 1\na: 2\n');
    expect(documents).toEqual([]);
    expect(diagnostics[0]!.message).toMatch(/unique/i);
    expect(diagnostics[0]!.line).toBe(2);
  });

  it('flattens kind: List into its items, each with its own lines', () => {
    const text = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {name: a}
- apiVersion: v1
  kind: Service
  metadata:
    name: b
`;
    const { documents } = parseDocuments('list.yaml', text);
    expect(
      documents.map((d) => [d.doc, d.line, (d.value as { metadata: { name: string } }).metadata.name]),
    ).toEqual([
      [1, 4, 'a'],
      [1, 7, 'b'],
    ]);
    expect(documents[1]!.lineOf(['metadata', 'name'])).toBe(10);
  });

  it('reads JSON with line numbers', () => {
    const text = '{\n  "apiVersion": "v1",\n  "kind": "Service",\n  "metadata": {\n    "name": "a"\n  }\n}\n';
    const { documents, diagnostics } = parseDocuments('s.json', text);
    expect(diagnostics).toEqual([]);
    expect(documents[0]!.lineOf(['metadata', 'name'])).toBe(5);
    const bad = parseDocuments('s.json', '{"a": [1, 2}');
    expect(bad.diagnostics[0]!.subject?.kind).toBe('JSON');
  });

  it('reads IPv6 addresses in flow lists as strings, as Kubernetes does', () => {
    const { documents } = parseDocuments('se.yaml', 'addresses: [1.2.3.4, 001:db8::]\nports: {a: 1}\n');
    expect(documents[0]!.value).toEqual({ addresses: ['1.2.3.4', '001:db8::'], ports: { a: 1 } });
  });

  it('finds proto (snake_case) field names for camelCase paths', () => {
    const { documents } = parseDocuments(
      't.yaml',
      'spec:\n  tls:\n  - match:\n    - sni_hosts:\n      - a.example.com\n',
    );
    expect(documents[0]!.lineOf(['spec', 'tls', 0, 'match', 0, 'sniHosts', 0])).toBe(5);
  });

  describe('a file that is not YAML or JSON is one line, with none of its bytes', () => {
    // The first bytes of a PNG, as a UTF-8 read of the file gives them.
    const png = Buffer.from([
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1,
    ]).toString('utf8');
    it.each([
      ['a PNG', png, 'U+001A on line 2'],
      [
        'NUL bytes after valid YAML',
        'apiVersion: v1\nkind: Secret\u0000\u0000secret-bytes\n',
        'U+0000 on line 2',
      ],
      ['a DEL byte', 'kind: \u007f\n', 'U+007F on line 1'],
    ])('%s', (_what, text, where) => {
      const r = parseDocuments('dir/logo.yaml', text);
      expect(r.documents).toEqual([]);
      expect(r.diagnostics.map(formatDiagnostic)).toEqual([
        `error   dir/logo.yaml#1:${where.slice(-1)} File logo.yaml: not a YAML or JSON document: it holds binary data (${where}); nothing in it is read [SLUICE_CONFIG_PARSE]`,
      ]);
      expect(r.diagnostics[0]!.message).not.toContain('secret-bytes');
    });

    it('tabs, CR LF line ends, a BOM and non-ASCII text are text', () => {
      const r = parseDocuments(
        'a.yaml',
        '\ufeffapiVersion: v1\r\nkind:\tService\r\nmetadata: {name: caf\u00e9}\r\n',
      );
      expect(r.diagnostics).toEqual([]);
      expect(r.documents).toHaveLength(1);
    });

    it('a huge single line is reported without echoing it', () => {
      const long = 'x'.repeat(2_000_000);
      const r = parseDocuments('big.yaml', `key: *${long}\n`);
      expect(r.diagnostics.length).toBeGreaterThan(0);
      for (const d of r.diagnostics) expect(formatDiagnostic(d).length).toBeLessThan(400);
    });
  });
});
