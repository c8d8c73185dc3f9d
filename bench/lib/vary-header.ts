/**
 * One request header whose value changes on every request, for both load generators: a values
 * file (one per line) for the paced client (`--vary-header`, `--values-file`) and a wrk Lua script
 * that cycles through the same values. Each wrk connection takes the next value in turn, so with
 * more values than a cache holds, no value is seen again before it has been evicted.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface VaryingHeader {
  readonly header: string;
  readonly valuesFile: string;
  readonly wrkScript: string;
  readonly count: number;
}

function luaString(s: string): string {
  return `"${s.replace(/[\\"]/g, '\\$&')}"`;
}

export function writeVaryingHeader(dir: string, header: string, values: readonly string[]): VaryingHeader {
  if (values.some((v) => v.includes('\n') || v === ''))
    throw new Error('values must be non-empty single lines');
  const valuesFile = join(dir, `vary-${header}.txt`);
  writeFileSync(valuesFile, values.join('\n') + '\n');
  const wrkScript = join(dir, `vary-${header}.lua`);
  writeFileSync(
    wrkScript,
    `-- ${values.length} values of ${header}, one per request in turn
local values = {
${values.map((v) => `  ${luaString(v)},`).join('\n')}
}
local n = #values
local i = 0
local headers = {}
for k, v in pairs(wrk.headers) do headers[k] = v end
request = function()
  i = i % n + 1
  headers[${luaString(header)}] = values[i]
  return wrk.format(nil, nil, headers)
end
`,
  );
  return { header, valuesFile, wrkScript, count: values.length };
}
