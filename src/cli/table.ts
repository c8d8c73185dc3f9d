/** Plain text table: headers from the first row's keys, columns padded, arrays joined. */
export function formatTable(rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '(no routes)';
  const first = rows[0] as Record<string, unknown>;
  const cols = Object.keys(first);
  const cell = (v: unknown): string =>
    Array.isArray(v) ? v.join(', ') : v === null || v === undefined ? '-' : String(v);
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)));
  const line = (vals: readonly string[]): string =>
    vals
      .map((v, i) => v.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...cells.map(line)].join('\n');
}
