import type { ServiceEntrySpec } from '../../../model/networking.ts';
import type { FieldPath } from '../../field-path.ts';
import {
  checkFqdn,
  checkIpOrCidr,
  checkWildcardDomain,
  isCidr,
  isDns1123Label,
  isIpAddress,
} from '../../validate-hosts.ts';
import {
  type Findings,
  HTTP_FAMILY,
  SPEC,
  TLS_FAMILY,
  validateExportTo,
  validatePort,
  validateSelectorLabels,
} from '../rules-common.ts';

/** ServiceEntry rules Istio's validation enforces (SE-1 … SE-3). */

export function validateServiceEntry(namespace: string, spec: ServiceEntrySpec, f: Findings): void {
  const resolution = spec.resolution ?? 'NONE';
  const endpoints = spec.endpoints ?? [];
  if (spec.hosts.length === 0) f.error([SPEC, 'hosts'], 'service entry must have at least one host');
  spec.hosts.forEach((h, i) => {
    const p: FieldPath = [SPEC, 'hosts', i];
    if (h === '*') f.error(p, 'invalid host *: a ServiceEntry host cannot be a bare wildcard');
    else {
      const bad = checkWildcardDomain(h);
      if (bad) f.error(p, bad);
      else if (h.startsWith('*') && h !== '*' && !h.startsWith('*.')) {
        f.warn(
          p,
          `partial wildcard "${h}" matches any host ending in "${h.slice(1)}"; prefer a whole-label wildcard such as "*.example.com"`,
        );
      }
    }
  });
  spec.addresses?.forEach((a, i) => {
    const p: FieldPath = [SPEC, 'addresses', i];
    const bad = checkIpOrCidr(a);
    if (bad) f.error(p, bad);
    else if (isCidr(a) && resolution !== 'NONE' && resolution !== 'STATIC') {
      f.error(p, `CIDR addresses are allowed only for NONE/STATIC resolution types, not ${resolution}`);
    }
  });
  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  spec.ports?.forEach((port, i) => {
    const p: FieldPath = [SPEC, 'ports', i];
    if (portNames.has(port.name)) f.error([...p, 'name'], `duplicate port name "${port.name}"`);
    portNames.add(port.name);
    if (portNumbers.has(port.number))
      f.error([...p, 'number'], `port number cannot be duplicated: ${port.number}`);
    portNumbers.add(port.number);
    if (port.name === '' || !isDns1123Label(port.name))
      f.error([...p, 'name'], `invalid port name "${port.name}": must be a DNS label`);
    validatePort(port.number, [...p, 'number'], f);
    validatePort(port.targetPort, [...p, 'targetPort'], f, 'targetPort');
  });
  if (spec.workloadSelector !== undefined && spec.endpoints !== undefined && endpoints.length > 0) {
    f.error([SPEC, 'workloadSelector'], 'only one of workloadSelector or endpoints can be set');
  }
  validateSelectorLabels(spec.workloadSelector?.labels, [SPEC, 'workloadSelector', 'labels'], f);
  if (spec.workloadSelector && Object.keys(spec.workloadSelector.labels ?? {}).length === 0) {
    f.warn(
      [SPEC, 'workloadSelector'],
      'workload selector without labels selects every workload in the namespace',
    );
  }
  if (resolution === 'NONE' && spec.workloadSelector)
    f.warn([SPEC, 'workloadSelector'], 'workloadSelector should not be set when resolution is NONE');
  if (resolution === 'NONE' && endpoints.length > 0)
    f.error([SPEC, 'endpoints'], 'NONE resolution cannot set endpoints');
  if (resolution === 'DYNAMIC_DNS' && endpoints.length > 0)
    f.error([SPEC, 'endpoints'], 'DYNAMIC_DNS resolution cannot set endpoints');
  if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1)
    f.error(
      [SPEC, 'endpoints'],
      `DNS_ROUND_ROBIN resolution cannot have multiple endpoints (got ${endpoints.length})`,
    );
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && endpoints.length === 0) {
    spec.hosts.forEach((h, i) => {
      if (h.includes('*') || checkFqdn(h) !== undefined) {
        f.error(
          [SPEC, 'hosts', i],
          `hosts must be FQDNs without wildcards when no endpoints are given for ${resolution} resolution, got "${h}"`,
        );
      }
    });
  }
  endpoints.forEach((e, i) => {
    const p: FieldPath = [SPEC, 'endpoints', i];
    const addr = e.address ?? '';
    if (addr === '') {
      if (resolution === 'STATIC') {
        if (e.network) f.warn([...p, 'address'], `address is unset with network "${e.network}"`);
        else f.error([...p, 'address'], 'address is required');
      } else if (resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') {
        f.error([...p, 'address'], `endpoint address is required for ${resolution} resolution`);
      }
    } else if (addr.startsWith('unix://')) {
      const sock = addr.slice('unix://'.length);
      if (sock === '' || (!sock.startsWith('@') && (!sock.startsWith('/') || sock.endsWith('/')))) {
        f.error([...p, 'address'], `"${addr}" is not an absolute path to a unix socket`);
      }
      if (Object.keys(e.ports ?? {}).length > 0)
        f.error([...p, 'ports'], `unix endpoint ${addr} must not include ports`);
      if (resolution === 'STATIC' && (spec.ports?.length ?? 0) !== 1)
        f.error([...p, 'address'], 'exactly 1 service port is required for unix endpoints');
    } else if (!isIpAddress(addr)) {
      if (resolution === 'STATIC')
        f.error(
          [...p, 'address'],
          `endpoint address "${addr}" is not a valid IP address (STATIC resolution)`,
        );
      else if (checkFqdn(addr) !== undefined)
        f.error([...p, 'address'], `endpoint address "${addr}" is not a valid FQDN or an IP address`);
    }
    for (const [name, port] of Object.entries(e.ports ?? {})) {
      const pp: FieldPath = [...p, 'ports', name];
      if (!portNames.has(name)) f.error(pp, `endpoint port ${name} is not defined by the service entry`);
      else if (!isDns1123Label(name)) f.error(pp, `invalid port name: ${name}`);
      validatePort(port, pp, f);
    }
    validateSelectorLabels(e.labels, [...p, 'labels'], f);
  });
  if (resolution !== 'NONE' && spec.hosts.length > 1) {
    const i =
      spec.ports?.findIndex(
        (port) => !port.protocol || !(HTTP_FAMILY.has(port.protocol) || TLS_FAMILY.has(port.protocol)),
      ) ?? -1;
    if (i >= 0)
      f.error(
        [SPEC, 'ports', i],
        'multiple hosts provided with non-HTTP, non-TLS ports: connections cannot be told apart by host',
      );
  }
  validateExportTo(namespace, spec.exportTo, [SPEC, 'exportTo'], f);
}
