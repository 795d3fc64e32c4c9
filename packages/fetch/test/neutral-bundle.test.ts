/**
 * `@dashscope-token/fetch` runs on runtimes without Node's builtins (Bun, Deno, Workers, edge):
 * bundled for the neutral platform with ESM conditions, its whole module graph (the core's
 * neutral entry included) imports no `node:` builtin and no undici.
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const nodeOnly = [
  'node:*',
  'undici',
  'undici/*',
  'ws',
  ...builtinModules,
  ...builtinModules.map((m) => `${m}/*`),
];

async function externalImports(file: string): Promise<string[]> {
  const result = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    platform: 'neutral',
    format: 'esm',
    mainFields: ['module', 'main'],
    conditions: ['import', 'default'],
    external: nodeOnly,
    metafile: true,
    logLevel: 'silent',
  });
  return Object.values(result.metafile.outputs).flatMap((output) =>
    output.imports.filter((i) => i.external).map((i) => i.path),
  );
}

describe('the fetch package', () => {
  it('bundles for a non-Node platform without any node: builtin, undici or ws', async () => {
    const entry = fileURLToPath(new URL('../src/index.ts', import.meta.url));
    expect(await externalImports(entry)).toEqual([]);
  });

  it('the check itself catches a Node import (the core main entry imports undici and node:)', async () => {
    const imports = await externalImports(
      fileURLToPath(new URL('../../core/src/index.ts', import.meta.url)),
    );
    expect(imports).toContain('undici');
    expect(imports.some((i) => i.startsWith('node:'))).toBe(true);
  });
});
