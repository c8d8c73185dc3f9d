/**
 * Envoy's runtime featureEnabled with a FractionalPercent of MILLION: a fresh roll per request
 * (fault injection, request mirroring). 0 never, 1,000,000 always.
 */
export function rollPerMillion(perMillion: number): boolean {
  return perMillion >= 1_000_000 || (perMillion > 0 && Math.random() * 1_000_000 < perMillion);
}
