/**
 * The gateway process bench/observability.ts measures: sluice's real request path
 * (createGateway) on a config file, with the request observer on or off, so the cost of the
 * observer (metrics, access log, tracing) is the only difference between legs. Not a test.
 *
 *   node bench/observability-gateway.ts --config FILE --observer on|off [--metrics on|off]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { loadResources } from '../src/config/index.ts';
import { compile } from '../src/compile/index.ts';
import { createGateway } from '../src/control/reconcile.ts';
import { createLogger } from '../src/observability/logger.ts';
import { createAccessLogger } from '../src/observability/access-log.ts';
import { createRequestMetrics } from '../src/observability/request-metrics.ts';
import { createRequestObserver } from '../src/observability/request-observer.ts';
import { createTracer } from '../src/observability/tracing.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    observer: { type: 'string', default: 'on' },
    metrics: { type: 'string', default: 'on' },
  },
});
if (values.config === undefined) throw new Error('--config FILE is required');

const logger = createLogger({ level: 'warn' });
const loaded = loadResources([{ file: values.config, text: readFileSync(values.config, 'utf8') }], {
  defaultNamespace: 'default',
});
const identity = {
  namespace: 'istio-system',
  labels: { istio: 'ingressgateway' },
  rootNamespace: 'istio-system',
};
const { snapshot, diagnostics } = compile(loaded.resources, { ...identity, nowMs: Date.now() });
const errors = [...loaded.diagnostics, ...diagnostics].filter((d) => d.level === 'error');
if (errors.length > 0) throw new Error(`config errors: ${JSON.stringify(errors)}`);

const registry = new Registry();
const accessLog = createAccessLogger({ onWarn: (m) => logger.warn(m) });
const tracing = createTracer({
  serviceName: 'sluice.istio-system',
  nodeId: 'router~127.0.0.1~sluice-bench.istio-system~istio-system.svc.cluster.local',
  namespace: 'istio-system',
  canonicalService: 'sluice',
  canonicalRevision: 'latest',
  onError: (e) => logger.warn(e.message),
});
const observer =
  values.observer === 'on'
    ? createRequestObserver({
        accessLog,
        metrics:
          values.metrics === 'on'
            ? createRequestMetrics({
                registry,
                workload: 'sluice',
                namespace: 'istio-system',
                labels: identity.labels,
              })
            : null,
        tracing,
      })
    : undefined;

const gateway = createGateway({ bind: '127.0.0.1', logger, onRequestDone: observer });
await gateway.apply(snapshot);
process.stdout.write(`ready ${[...gateway.boundPorts().values()].join(',')}\n`);

// Scrape now and then, as Prometheus would (every 15 s), so series rendering is in the picture.
const scrape = setInterval(() => void registry.metrics(), 15_000);
scrape.unref();

process.once('SIGTERM', () => {
  void Promise.all([gateway.close(), accessLog.close(), tracing.close()]).then(() => process.exit(0));
});
