import type { z } from 'zod';
import type { Diagnostic, DiagnosticSubject } from '../errors/diagnostic.ts';
import { describeType, describeValue, formatPath, valueAt } from './field-path.ts';

const EXPECTED: Readonly<Record<string, string>> = {
  int: 'an integer',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map',
  record: 'a map',
  date: 'a timestamp',
};

export interface IssueContext {
  readonly subject: DiagnosticSubject;
  readonly value: unknown;
  readonly lineOf: (path: readonly (string | number)[]) => number | undefined;
  /** Never show found values (Secrets). */
  readonly secret: boolean;
}

function found(ctx: IssueContext, path: readonly PropertyKey[]): string {
  const v = valueAt(ctx.value, path);
  return ctx.secret ? describeType(v) : describeValue(v);
}

function messageOf(issue: z.core.$ZodIssue, ctx: IssueContext): string {
  const path = issue.path;
  switch (issue.code) {
    case 'invalid_type': {
      const exp = EXPECTED[issue.expected] ?? issue.expected;
      const v = valueAt(ctx.value, path);
      if (v === undefined) return `required field is missing (expected ${exp})`;
      return `expected ${exp}, got ${found(ctx, path)}`;
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array') {
        const n = (valueAt(ctx.value, path) as unknown[] | undefined)?.length ?? 0;
        return `must have at least ${min} item${min === 1 ? '' : 's'}, got ${n}`;
      }
      if (issue.origin === 'string')
        return min <= 1 ? 'must not be empty' : `must be at least ${min} characters long`;
      return `must be ${issue.inclusive ? '>=' : '>'} ${min}, got ${found(ctx, path)}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array') return `must have at most ${max} items`;
      if (issue.origin === 'string') return `must be at most ${max} characters long`;
      return `must be ${issue.inclusive ? '<=' : '<'} ${max}, got ${found(ctx, path)}`;
    }
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => String(v)).join(', ')}; got ${found(ctx, path)}`;
    case 'invalid_union':
      return `has an unexpected shape: got ${found(ctx, path)}`;
    case 'custom':
      return issue.message;
    default:
      return `${issue.message}; got ${found(ctx, path)}`;
  }
}

/** One Diagnostic per zod issue (one per unknown key), with the field path and its line. */
export function issuesToDiagnostics(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  const push = (path: readonly PropertyKey[], message: string): void => {
    const p = path.filter((s): s is string | number => typeof s !== 'symbol');
    const line = ctx.lineOf(p);
    out.push({
      level: 'error',
      code: 'SLUICE_CONFIG_SCHEMA',
      subject: ctx.subject,
      ...(p.length > 0 ? { path: formatPath(p) } : {}),
      ...(line !== undefined ? { line } : {}),
      message,
    });
  };
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        push([...issue.path, key], `unknown field: the ${ctx.subject.kind} schema does not define it`);
      }
      continue;
    }
    push(issue.path, messageOf(issue, ctx));
  }
  return out;
}
