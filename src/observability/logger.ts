import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Paths whose values are never written: tokens, cookies, keys. Config dumps go through
 * model/private-bytes rendering as well; this is the last line of defence for log calls.
 */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'token',
  'privateKey',
  'key',
];

export function createLogger(opts: { level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      base: undefined,
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}

/** A logger that writes nothing, for tests and offline commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
