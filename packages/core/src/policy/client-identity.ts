/**
 * Who a request counts against, worked out once per request and shared by the per-client
 * limits, the concurrency cap, budgets and usage metering. Runtime-neutral.
 */
import type { Admitted } from './admission.js';
import type { ClientFacts, Limits } from './limits.js';

/** Who an admitted request counts against (see {@link clientIdentity}). */
export interface ClientIdentity {
  /** As a limiter key: `key:…` (`limits.key`), `id:…` (`authorize`'s id) or `ip:…`. */
  key: string;
  /** The same without its prefix: the `identity` of usage events, and of budgets by default. */
  name: string;
}

/**
 * Who a request counts against, for limits, concurrency, budgets and metering alike:
 * `limits.key(ctx)`, else the `id` `authorize` returned, else the client's address
 * (`limits.clientAddressHeader` applies; `'unknown'` without one). Worked out once per request
 * and kept on `admitted`, so `limits.key` is called once. May throw what `limits.key` throws.
 */
export function clientIdentity<Ctx>(
  limits: Limits<Ctx> | undefined,
  ctx: Ctx,
  admitted: Admitted,
  client: ClientFacts,
): ClientIdentity {
  if (admitted.client !== undefined) return admitted.client;
  const own = limits?.ownKeyOf(ctx);
  let who: ClientIdentity;
  if (own !== undefined) who = { key: `key:${own}`, name: own };
  else if (admitted.identity !== undefined) {
    who = { key: `id:${admitted.identity.id}`, name: admitted.identity.id };
  } else {
    const address = limits === undefined ? (client.address ?? 'unknown') : limits.addressOf(client);
    who = { key: `ip:${address}`, name: address };
  }
  admitted.client = who;
  return who;
}
