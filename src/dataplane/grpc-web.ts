/**
 * gRPC-Web in, gRPC out (Envoy's grpc_web filter, decodeHeaders). Istio inserts that filter on a
 * Gateway listener whose server port protocol is GRPC-WEB (and, in the mesh, on the sidecar of a
 * Service port declared GRPC-WEB; sluice has no sidecar, so it bridges at the gateway when the
 * chosen destination's port says GRPC-WEB). A gRPC-Web request leaves here as gRPC: content type
 * `application/grpc`, `te: trailers`, `grpc-accept-encoding` when the client sent none, and no
 * content-length (a `-text` body shrinks as it is decoded). Everything after sees a gRPC request,
 * so local replies take gRPC's trailers-only form, in gRPC-Web's content type (local-reply.ts).
 */
import type { RequestContext } from './request-context.ts';
import { applyHeaderEdits } from './header-edits.ts';
import { grpcWebEncodingOf, wantsTextResponse } from '../util/grpc-web.ts';
import { newGrpcWebBridge } from '../upstream/grpc-web.ts';
import type { HeaderEdits } from './filters/filter.ts';

const AS_GRPC: HeaderEdits = {
  remove: ['content-length'],
  set: [
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
  ],
};

const AS_GRPC_WITH_BODY: HeaderEdits = {
  remove: ['content-length'],
  set: [
    ['content-type', 'application/grpc'],
    ['te', 'trailers'],
    // The body goes on without a length; forward reads this as "a body follows", as it does for
    // an HTTP/2 client's body sent without content-length.
    ['transfer-encoding', 'chunked'],
  ],
};

const ACCEPT_ENCODING: readonly [string, string] = ['grpc-accept-encoding', 'identity,deflate,gzip'];

/** Bridges `ctx` when it is a gRPC-Web request not bridged yet; other requests are left alone. */
export function bridgeGrpcWeb(ctx: RequestContext): void {
  if (ctx.grpcWeb !== null) return;
  const raw = ctx.req.rawHeaders;
  let type: string | null = null;
  let accept: string | null = null;
  let length: string | null = null;
  let chunked = false;
  let acceptEncoding = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (
      name.length !== 6 &&
      name.length !== 12 &&
      name.length !== 14 &&
      name.length !== 17 &&
      name.length !== 20
    )
      continue;
    switch (name.toLowerCase()) {
      case 'content-type':
        type ??= raw[i + 1]!;
        break;
      case 'accept':
        accept ??= raw[i + 1]!;
        break;
      case 'content-length':
        length = raw[i + 1]!;
        break;
      case 'transfer-encoding':
        chunked = true;
        break;
      case 'grpc-accept-encoding':
        acceptEncoding = true;
        break;
    }
  }
  const encoding = type === null ? null : grpcWebEncodingOf(type);
  if (encoding === null) return;
  const body = chunked || (length !== null && length !== '0');
  const edits = body ? AS_GRPC_WITH_BODY : AS_GRPC;
  applyHeaderEdits(
    ctx.req,
    acceptEncoding ? edits : { remove: edits.remove, set: [...edits.set, ACCEPT_ENCODING] },
  );
  ctx.grpcWeb = newGrpcWebBridge(encoding === 'text', wantsTextResponse(accept));
}
