/** The user-agent string sent on every call to Model Studio. */
import pkg from '../../package.json' with { type: 'json' };

function runtime(): string {
  const versions =
    typeof process !== 'undefined' && process !== null
      ? (process.versions as Record<string, string | undefined> | undefined)
      : undefined;
  if (versions?.bun !== undefined) return `bun/${versions.bun}`;
  if (versions?.node !== undefined) return `node/${versions.node}`;
  const deno = (globalThis as { Deno?: { version?: { deno?: string } } }).Deno;
  if (deno?.version?.deno !== undefined) return `deno/${deno.version.deno}`;
  return 'runtime/unknown';
}

/** `dashscope-token/<package version> <runtime>/<version>`, e.g. `… node/20.20.0`. */
export const USER_AGENT = `dashscope-token/${pkg.version} ${runtime()}`;
