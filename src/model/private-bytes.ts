import { createHash } from 'node:crypto';

/**
 * Key material and other secret bytes, kept as base64 text so the model stays JSON-safe.
 * Anything that renders a model (dumps, logs, diagnostics) must go through `renderPrivate`,
 * which prints only a fingerprint.
 */
export interface PrivateBytes {
  readonly private: true;
  readonly base64: string;
}

export function privateBytes(base64: string): PrivateBytes {
  return { private: true, base64 };
}

export function isPrivateBytes(v: unknown): v is PrivateBytes {
  return typeof v === 'object' && v !== null && (v as { private?: unknown }).private === true;
}

export function renderPrivate(p: PrivateBytes): string {
  const digest = createHash('sha256').update(p.base64).digest('hex');
  return `[redacted sha256:${digest.slice(0, 16)}]`;
}
