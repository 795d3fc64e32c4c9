/**
 * What a module graph imports that a non-Node runtime lacks: bundled with esbuild for the
 * neutral platform (ESM conditions), the external imports left are the `node:` builtins,
 * undici and ws it reaches.
 */
import { builtinModules } from 'node:module';
import { build } from 'esbuild';

/** Modules only Node (or an npm install of a Node-only package) has. */
export const NODE_ONLY = [
  'node:*',
  'undici',
  'undici/*',
  'ws',
  ...builtinModules,
  ...builtinModules.map((m) => `${m}/*`),
];

/** The external (unbundled) imports of `file`'s graph: `[]` for a runtime-neutral one. */
export async function nodeOnlyImports(file: string): Promise<string[]> {
  const result = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    platform: 'neutral',
    format: 'esm',
    mainFields: ['module', 'main'],
    conditions: ['import', 'default'],
    external: NODE_ONLY,
    metafile: true,
    logLevel: 'silent',
  });
  return Object.values(result.metafile.outputs).flatMap((output) =>
    output.imports.filter((i) => i.external).map((i) => i.path),
  );
}
