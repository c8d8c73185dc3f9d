/**
 * Retry decisions (VS-23..VS-25). The attempt loop lives in forward.ts; this file only answers
 * "may this failure / status be retried" and "how long to wait".
 */
import type { RetryPolicy } from '../snapshot/types.ts';
import type { UpstreamFailure } from './upstream-error.ts';

/** Whether the policy covers this failure (the caller checks attempts left and body replay). */
export function retryCoversFailure(policy: RetryPolicy, f: UpstreamFailure): boolean {
  if (!f.retryable) return false;
  const on = policy.retryOn;
  switch (f.kind) {
    case 'connect-failure':
      return on.connectFailure || on.reset || on.resetBeforeRequest || on.fiveXx || on.gatewayError;
    case 'reset':
      return on.reset || on.fiveXx || on.gatewayError;
    case 'timeout':
      return on.fiveXx || on.gatewayError;
    default:
      return false;
  }
}

/** Whether a real upstream response status is retried (codes mean real responses, VS-24). */
export function retryCoversStatus(policy: RetryPolicy, status: number): boolean {
  if (status < 400) return false;
  const on = policy.retryOn;
  if (on.fiveXx && status >= 500) return true;
  if (on.gatewayError && (status === 502 || status === 503 || status === 504)) return true;
  if (on.retriable4xx && status === 409) return true;
  return on.statusCodes.size > 0 && on.statusCodes.has(status);
}

/** Envoy's jittered exponential back-off: uniform in [0, min(max, base·(2^n − 1))], n = retry number (1-based). */
export function backoffMs(policy: RetryPolicy, retryNumber: number): number {
  const base = policy.backoffBaseMs > 0 ? policy.backoffBaseMs : 25;
  const max = policy.backoffMaxMs > 0 ? policy.backoffMaxMs : base * 10;
  const ceiling = Math.min(max, base * (2 ** Math.min(retryNumber, 16) - 1));
  return Math.floor(Math.random() * (ceiling + 1));
}
