import type { Code } from './codes.ts';

/** A process fault (bind refused, unreadable file at start). Config problems are Diagnostics instead. */
export class SluiceError extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SluiceError';
    this.code = code;
  }
}

export function isSluiceError(err: unknown): err is SluiceError {
  return err instanceof SluiceError;
}
