/** The emulated Workbench login page: the first visit logs in, any later one is refused. */
import type { Exchange } from '../exchange.js';

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

const HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
};

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title><style>body{font:14px/1.5 ui-monospace,monospace;background:#111;color:#ddd;padding:2rem}h1{font-size:1.1rem}code{color:#8f8}</style></head><body>${body}</body></html>`;
}

/** Serves `GET /ecs-workbench/disposable/login?token=…`. */
export function workbenchPageRoute(ex: Exchange): void {
  const result = ex.state.paiEas.logins.redeem(ex.query.get('token'), ex.state.clock.now());
  if (typeof result === 'string') {
    const why =
      result === 'used'
        ? 'This login link has already been used. Ask for a new one.'
        : result === 'expired'
          ? 'This login link has expired. Ask for a new one.'
          : 'This login link is not valid.';
    ex.send(403, page('Workbench: login refused', `<h1>Login refused</h1><p>${why}</p>`), HEADERS);
    return;
  }
  const target = [result.service, result.instance, result.worker].filter(Boolean).join(' / ');
  ex.send(
    200,
    page(
      'Workbench (emulated)',
      `<h1>Emulated PAI-EAS Workbench</h1><p>Logged in to <code>${escapeHtml(target)}</code>.</p><pre>root@${escapeHtml(result.instance)}:/# _</pre><p>This is the dashscope-token emulator: no real container runs here.</p>`,
    ),
    HEADERS,
  );
}
