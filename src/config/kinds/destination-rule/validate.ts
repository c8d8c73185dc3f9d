import type { ClientTlsSettings, DestinationRuleSpec, TrafficPolicy } from '../../../model/networking.ts';
import type { FieldPath } from '../../field-path.ts';
import { checkFqdn, checkWildcardDomain, isDns1123Label, isIpAddress } from '../../validate-hosts.ts';
import {
  type Findings,
  SPEC,
  validateDurationValue,
  validateExportTo,
  validateIntPercent,
  validatePort,
  validateSelectorLabels,
} from '../rules-common.ts';

/** DestinationRule rules Istio's validation enforces (DR-1 … DR-6). */

function validateClientTls(t: ClientTlsSettings | undefined, path: FieldPath, f: Findings): void {
  if (!t) return;
  if ((t.mode === 'SIMPLE' || t.mode === 'MUTUAL') && t.credentialName) {
    if (t.clientCertificate || t.caCertificates || t.privateKey)
      f.error(
        path,
        'cannot specify client certificates or CA certificate when credentialName is set',
        'SLUICE_TLS_CONFIG',
      );
    return;
  }
  if (t.mode === 'MUTUAL') {
    if (!t.clientCertificate)
      f.error(
        [...path, 'clientCertificate'],
        'client certificate required for mutual tls',
        'SLUICE_TLS_CONFIG',
      );
    if (!t.privateKey)
      f.error([...path, 'privateKey'], 'private key required for mutual tls', 'SLUICE_TLS_CONFIG');
  }
}

function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let d = 3; d * d <= x; d += 2) if (x % d === 0) return false;
  return true;
}

/** One traffic policy's blocks (validateTrafficPolicy and validatePortTrafficPolicies). */
function validatePolicyBlocks(b: TrafficPolicy, p: FieldPath, f: Findings): void {
  const lb = b.loadBalancer;
  if (lb) {
    const lp: FieldPath = [...p, 'loadBalancer'];
    if (lb.simple !== undefined && lb.consistentHash !== undefined)
      f.error(lp, 'loadBalancer may set only one of simple and consistentHash');
    const ch = lb.consistentHash;
    if (ch) {
      if (ch.minimumRingSize) {
        f.warn(
          [...lp, 'consistentHash', 'minimumRingSize'],
          'consistentHash.minimumRingSize is deprecated; use ringHash.minimumRingSize',
        );
        if (ch.ringHash || ch.maglev)
          f.error([...lp, 'consistentHash'], 'only one of minimumRingSize or maglev/ringHash can be set');
      }
      const keys = [ch.httpHeaderName, ch.httpCookie, ch.useSourceIp, ch.httpQueryParameterName].filter(
        (v) => v !== undefined,
      ).length;
      if (keys > 1)
        f.error(
          [...lp, 'consistentHash'],
          'consistentHash may set only one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName',
        );
      if (ch.ringHash && ch.maglev)
        f.error([...lp, 'consistentHash'], 'consistentHash may set only one of ringHash and maglev');
      if (ch.httpCookie && ch.httpCookie.name === '')
        f.error([...lp, 'consistentHash', 'httpCookie', 'name'], 'name required for httpCookie');
      validateDurationValue(ch.httpCookie?.ttl, [...lp, 'consistentHash', 'httpCookie', 'ttl'], f, true);
      const ml = ch.maglev;
      if (ml) {
        const tp: FieldPath = [...lp, 'consistentHash', 'maglev', 'tableSize'];
        const size = ml.tableSize ?? 0;
        if (size === 0) f.error(tp, 'tableSize must be set for maglev');
        else if (size >= 5000011) f.error(tp, `tableSize must be less than 5000011 for maglev, got ${size}`);
        else if (!isPrime(size)) f.error(tp, `tableSize must be a prime number for maglev, got ${size}`);
      }
    }
    const w = lb.warmup;
    if (w) {
      const wp: FieldPath = [...lp, 'warmup'];
      if (w.duration === undefined) f.error([...wp, 'duration'], 'warmup duration is required');
      validateDurationValue(w.duration, [...wp, 'duration'], f);
      if (w.minimumPercent !== undefined && (w.minimumPercent < 0 || w.minimumPercent > 100)) {
        f.error([...wp, 'minimumPercent'], `minimumPercent must be in 0..100, got ${w.minimumPercent}`);
      }
      if (w.aggression !== undefined && w.aggression < 1)
        f.error([...wp, 'aggression'], `aggression must be at least 1, got ${w.aggression}`);
    }
    validateDurationValue(lb.warmupDurationSecs, [...lp, 'warmupDurationSecs'], f);
  }
  const od = b.outlierDetection;
  if (od) {
    const op: FieldPath = [...p, 'outlierDetection'];
    if (od.consecutiveErrors)
      f.warn(
        [...op, 'consecutiveErrors'],
        'consecutiveErrors is deprecated; use consecutiveGatewayErrors or consecutive5xxErrors',
      );
    if (!od.splitExternalLocalOriginErrors && (od.consecutiveLocalOriginFailures ?? 0) > 0) {
      f.error(
        [...op, 'consecutiveLocalOriginFailures'],
        'consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true',
      );
    }
    validateDurationValue(od.interval, [...op, 'interval'], f);
    validateDurationValue(od.baseEjectionTime, [...op, 'baseEjectionTime'], f);
    validateIntPercent(od.maxEjectionPercent, [...op, 'maxEjectionPercent'], f);
    validateIntPercent(od.minHealthPercent, [...op, 'minHealthPercent'], f);
  }
  const cp = b.connectionPool;
  if (cp) {
    const pp: FieldPath = [...p, 'connectionPool'];
    if (!cp.http && !cp.tcp) f.error(pp, 'connection pool must have at least one field (http or tcp)');
    const http = cp.http;
    if (http) {
      for (const k of [
        'http1MaxPendingRequests',
        'http2MaxRequests',
        'maxRequestsPerConnection',
        'maxRetries',
        'maxConcurrentStreams',
      ] as const) {
        const v = http[k];
        if (v !== undefined && v < 0) f.error([...pp, 'http', k], `${k} must not be negative, got ${v}`);
      }
      validateDurationValue(http.idleTimeout, [...pp, 'http', 'idleTimeout'], f);
      if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol) {
        f.error(
          [...pp, 'http', 'useClientProtocol'],
          'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE',
        );
      }
    }
    const tcp = cp.tcp;
    if (tcp) {
      if (tcp.maxConnections !== undefined && tcp.maxConnections < 0) {
        f.error(
          [...pp, 'tcp', 'maxConnections'],
          `maxConnections must not be negative, got ${tcp.maxConnections}`,
        );
      }
      validateDurationValue(tcp.connectTimeout, [...pp, 'tcp', 'connectTimeout'], f);
      validateDurationValue(tcp.maxConnectionDuration, [...pp, 'tcp', 'maxConnectionDuration'], f);
      validateDurationValue(tcp.idleTimeout, [...pp, 'tcp', 'idleTimeout'], f, true);
      validateDurationValue(tcp.tcpKeepalive?.time, [...pp, 'tcp', 'tcpKeepalive', 'time'], f);
      validateDurationValue(tcp.tcpKeepalive?.interval, [...pp, 'tcp', 'tcpKeepalive', 'interval'], f);
    }
  }
  validateClientTls(b.tls, [...p, 'tls'], f);
}

function validateTrafficPolicy(tp: TrafficPolicy | undefined, path: FieldPath, f: Findings): void {
  if (!tp) return;
  const any = [
    tp.loadBalancer,
    tp.connectionPool,
    tp.outlierDetection,
    tp.tls,
    tp.portLevelSettings,
    tp.tunnel,
    tp.proxyProtocol,
    tp.retryBudget,
  ].some((v) => v !== undefined);
  if (!any) {
    f.error(path, 'traffic policy must have at least one field');
    return;
  }
  if (tp.tunnel && tp.proxyProtocol) f.error(path, 'tunnel and proxyProtocol must not be set together');
  const tunnel = tp.tunnel as { protocol?: string; targetHost?: string; targetPort?: number } | undefined;
  if (tunnel) {
    const tup: FieldPath = [...path, 'tunnel'];
    if (
      tunnel.protocol !== undefined &&
      tunnel.protocol !== '' &&
      tunnel.protocol !== 'CONNECT' &&
      tunnel.protocol !== 'POST'
    ) {
      f.error([...tup, 'protocol'], `tunnel protocol must be "CONNECT" or "POST", got "${tunnel.protocol}"`);
    }
    const th = tunnel.targetHost ?? '';
    if (checkFqdn(th) !== undefined && !isIpAddress(th))
      f.error([...tup, 'targetHost'], `tunnel target host must be an FQDN or IP address, got "${th}"`);
    validatePort(tunnel.targetPort ?? 0, [...tup, 'targetPort'], f, 'tunnel targetPort');
  }
  validatePolicyBlocks(tp, path, f);
  tp.portLevelSettings?.forEach((pl, i) => {
    const pp: FieldPath = [...path, 'portLevelSettings', i];
    if (pl.port === undefined) f.error([...pp, 'port'], 'portLevelSettings need a port');
    else validatePort(pl.port.number ?? 0, [...pp, 'port', 'number'], f);
    if (!pl.outlierDetection && !pl.connectionPool && !pl.loadBalancer && !pl.tls) {
      f.error(
        pp,
        'port traffic policy must have at least one of loadBalancer, connectionPool, outlierDetection, tls',
      );
    } else validatePolicyBlocks(pl, pp, f);
  });
}

export function validateDestinationRule(namespace: string, spec: DestinationRuleSpec, f: Findings): void {
  if (spec.host === '') f.error([SPEC, 'host'], 'host is required');
  else {
    const bad = checkWildcardDomain(spec.host);
    if (bad) f.error([SPEC, 'host'], bad);
  }
  validateTrafficPolicy(spec.trafficPolicy, [SPEC, 'trafficPolicy'], f);
  const names = new Set<string>();
  spec.subsets?.forEach((s, i) => {
    const p: FieldPath = [SPEC, 'subsets', i];
    if (!isDns1123Label(s.name))
      f.error([...p, 'name'], `subset name "${s.name}" is invalid: must be a DNS label`);
    if (names.has(s.name)) f.error([...p, 'name'], `duplicate subset name "${s.name}"`);
    names.add(s.name);
    validateSelectorLabels(s.labels, [...p, 'labels'], f);
    validateTrafficPolicy(s.trafficPolicy, [...p, 'trafficPolicy'], f);
  });
  validateSelectorLabels(spec.workloadSelector?.matchLabels, [SPEC, 'workloadSelector', 'matchLabels'], f);
  validateExportTo(namespace, spec.exportTo, [SPEC, 'exportTo'], f);
  if (spec.workloadSelector && spec.exportTo?.length) {
    const own = spec.exportTo.every((e) => e === '.' || e === namespace);
    if (!own)
      f.error(
        [SPEC, 'exportTo'],
        'a DestinationRule with a workloadSelector cannot be exported beyond its own namespace',
      );
  }
}
