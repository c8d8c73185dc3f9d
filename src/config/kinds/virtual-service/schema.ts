import { z } from 'zod';
import type { Destination, Headers, StringMatch, VirtualServiceSpec } from '../../../model/networking.ts';
import { bool, duration, int32, msg, percent, str, stringMap, strList, uint32 } from '../schema-common.ts';

/** Istio's StringMatch is a oneof: at most one of exact/prefix/regex ({} is "present" for headers). */
export const StringMatchSchema = msg({
  exact: str.optional(),
  prefix: str.optional(),
  regex: str.optional(),
}).check(
  z.superRefine((m, ctx) => {
    const set = (['exact', 'prefix', 'regex'] as const).filter((k) => m[k] !== undefined);
    if (set.length > 1) {
      ctx.addIssue({
        code: 'custom',
        message: `set only one of exact, prefix, regex; got ${set.join(' and ')}`,
      });
    }
  }),
) as unknown as z.ZodType<StringMatch>;

const StringMatchOrPresent = StringMatchSchema as unknown as z.ZodType<StringMatch | Record<string, never>>;
const matchMap = z.record(z.string(), StringMatchOrPresent);

export const DestinationSchema: z.ZodType<Destination> = msg({
  host: str,
  subset: str.optional(),
  port: msg({ number: uint32.optional() }).optional(),
});

const headerOps = msg({ set: stringMap.optional(), add: stringMap.optional(), remove: strList.optional() });
export const HeadersSchema: z.ZodType<Headers> = msg({
  request: headerOps.optional(),
  response: headerOps.optional(),
});

const HTTPMatchRequest = msg({
  name: str.optional(),
  uri: StringMatchSchema.optional(),
  scheme: StringMatchSchema.optional(),
  method: StringMatchSchema.optional(),
  authority: StringMatchSchema.optional(),
  headers: matchMap.optional(),
  withoutHeaders: matchMap.optional(),
  queryParams: matchMap.optional(),
  port: uint32.optional(),
  sourceLabels: stringMap.optional(),
  gateways: strList.optional(),
  sourceNamespace: str.optional(),
  ignoreUriCase: bool.optional(),
  statPrefix: str.optional(),
});

const HTTPRoute = msg({
  name: str.optional(),
  match: z.array(HTTPMatchRequest).optional(),
  route: z
    .array(
      msg({ destination: DestinationSchema, weight: int32.optional(), headers: HeadersSchema.optional() }),
    )
    .optional(),
  redirect: msg({
    uri: str.optional(),
    authority: str.optional(),
    port: uint32.optional(),
    derivePort: z.enum(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']).optional(),
    scheme: str.optional(),
    redirectCode: uint32.optional(),
  }).optional(),
  directResponse: msg({
    status: uint32,
    body: msg({ string: str.optional(), bytes: str.optional() }).optional(),
  }).optional(),
  delegate: msg({ name: str.optional(), namespace: str.optional() }).optional(),
  rewrite: msg({
    uri: str.optional(),
    authority: str.optional(),
    uriRegexRewrite: msg({ match: str, rewrite: str }).optional(),
  }).optional(),
  timeout: duration.optional(),
  retries: msg({
    attempts: int32.optional(),
    perTryTimeout: duration.optional(),
    retryOn: str.optional(),
    retryRemoteLocalities: bool.optional(),
    retryIgnorePreviousHosts: bool.optional(),
    backoff: duration.optional(),
  }).optional(),
  fault: msg({
    delay: msg({
      fixedDelay: duration.optional(),
      exponentialDelay: duration.optional(),
      percentage: percent.optional(),
      percent: int32.optional(),
    }).optional(),
    abort: msg({
      httpStatus: int32.optional(),
      grpcStatus: str.optional(),
      http2Error: str.optional(),
      percentage: percent.optional(),
    }).optional(),
  }).optional(),
  mirror: DestinationSchema.optional(),
  mirrors: z.array(msg({ destination: DestinationSchema, percentage: percent.optional() })).optional(),
  mirrorPercentage: percent.optional(),
  mirrorPercent: uint32.optional(),
  corsPolicy: msg({
    allowOrigins: z.array(StringMatchSchema).optional(),
    allowOrigin: strList.optional(),
    allowMethods: strList.optional(),
    allowHeaders: strList.optional(),
    exposeHeaders: strList.optional(),
    maxAge: duration.optional(),
    allowCredentials: bool.optional(),
    unmatchedPreflights: z.enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']).optional(),
  }).optional(),
  headers: HeadersSchema.optional(),
});

const l4Match = {
  destinationSubnets: strList.optional(),
  port: uint32.optional(),
  sourceLabels: stringMap.optional(),
  gateways: strList.optional(),
  sourceNamespace: str.optional(),
};

const RouteDestination = msg({ destination: DestinationSchema, weight: int32.optional() });

export const VirtualServiceSpecSchema: z.ZodType<VirtualServiceSpec> = msg({
  hosts: strList.optional().transform((h) => h ?? []),
  gateways: strList.optional(),
  http: z.array(HTTPRoute).optional(),
  tls: z
    .array(
      msg({
        match: z.array(msg({ sniHosts: strList, ...l4Match })),
        route: z.array(RouteDestination).optional(),
      }),
    )
    .optional(),
  tcp: z
    .array(msg({ match: z.array(msg(l4Match)).optional(), route: z.array(RouteDestination).optional() }))
    .optional(),
  exportTo: strList.optional(),
});
