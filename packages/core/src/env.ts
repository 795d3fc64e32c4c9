/** The process environment, where the runtime has one. */

/**
 * `process.env` on Node, Bun and Deno (with `--allow-env`); an empty record on runtimes
 * without `process` (Cloudflare Workers without `nodejs_compat`, browsers) or where reading it
 * is refused.
 */
export function processEnv(): Readonly<Record<string, string | undefined>> {
  try {
    return typeof process !== 'undefined' && process !== null && process.env !== undefined
      ? process.env
      : {};
  } catch {
    return {};
  }
}
