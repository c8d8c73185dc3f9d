import type { SecretSpec } from '../../../model/kube.ts';
import type { Findings } from '../rules-common.ts';

/** Secret: what a TLS credential needs. */

export function validateSecret(spec: SecretSpec, f: Findings): void {
  if (spec.type === 'kubernetes.io/tls') {
    for (const key of ['tls.crt', 'tls.key']) {
      if (!spec.data[key])
        f.warn(['data'], `a kubernetes.io/tls Secret needs data["${key}"]`, 'SLUICE_TLS_CONFIG');
    }
  }
}
