import type { Options } from 'tsup';

/**
 * The build every published package shares: `src/index.ts` as ESM (`.js`) and CommonJS
 * (`.cjs`), each with its declarations (`.d.ts` / `.d.cts`), for Node 20 and later.
 */
export const libraryBuild: Options = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: false,
};
