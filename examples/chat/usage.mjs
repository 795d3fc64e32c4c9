// The chat demo's usage panel, server side: adds up the middleware's usage events (`onUsage`)
// since the server started, by model, and serves them with the mints of the token caches as
// GET /usage (JSON). Nothing in it is secret: events carry a key hash, never a key.

/**
 * @returns {{
 *   onUsage: (event: import('@dashscope-token/core').UsageEvent) => void,
 *   handler: (stats: () => import('@dashscope-token/core').DashScopeHandlerStats) =>
 *     (req: import('express').Request, res: import('express').Response) => void,
 * }}
 */
export function usagePanel() {
  const since = new Date().toISOString();
  /** model → { requests, inputTokens, outputTokens, totalTokens } */
  const models = new Map();
  let requests = 0;

  function onUsage(event) {
    requests += 1;
    const name = event.model ?? 'unknown';
    let row = models.get(name);
    if (row === undefined) {
      row = { model: name, requests: 0, inputTokens: 0, outputTokens: 0, totalTokens: 0 };
      models.set(name, row);
    }
    row.requests += 1;
    row.inputTokens += event.inputTokens ?? 0;
    row.outputTokens += event.outputTokens ?? 0;
    row.totalTokens += event.totalTokens ?? (event.inputTokens ?? 0) + (event.outputTokens ?? 0);
  }

  function handler(stats) {
    return (_req, res) => {
      const { proxyTokens, routeTokens } = stats();
      res.set('Cache-Control', 'no-store');
      res.json({
        since,
        requests,
        mints: proxyTokens.mints + (routeTokens?.mints ?? 0),
        models: [...models.values()],
      });
    };
  }

  return { onUsage, handler };
}
