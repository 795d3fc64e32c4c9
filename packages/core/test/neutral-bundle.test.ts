/**
 * `@dashscope-token/core/neutral` runs on runtimes without Node's builtins: bundled for the
 * neutral platform, its module graph imports no `node:` builtin and no undici.
 */
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const entry = fileURLToPath(new URL('../src/neutral.ts', import.meta.url));
const nodeOnly = [
  'node:*',
  'undici',
  'undici/*',
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

describe('the neutral entry', () => {
  it('bundles for a non-Node platform without any node: builtin or undici', async () => {
    expect(await externalImports(entry)).toEqual([]);
  });

  it('the check itself catches a Node import (the root entry imports undici and node:http)', async () => {
    const root = fileURLToPath(new URL('../src/index.ts', import.meta.url));
    const imports = await externalImports(root);
    expect(imports).toContain('undici');
    expect(imports.some((i) => i.startsWith('node:'))).toBe(true);
  });

  it('reads process, Buffer and setTimeout handles only behind guards', async () => {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      platform: 'neutral',
      format: 'esm',
      mainFields: ['module', 'main'],
      external: nodeOnly,
      logLevel: 'silent',
    });
    const code = result.outputFiles[0]?.text ?? '';
    expect(code).toContain('typeof process');
    expect(code).not.toMatch(/\bBuffer\b/);
    // The global `process` (not a method named process) only on lines that check it exists.
    const unguarded = code
      .split('\n')
      .filter((line) => /(?<![.\w])process\b(?!\s*\()/.test(line))
      .filter((line) => !/typeof process/.test(line));
    expect(unguarded).toEqual([]);
  });
});
