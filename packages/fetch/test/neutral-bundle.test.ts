/**
 * `@dashscope-token/fetch` runs on runtimes without Node's builtins (Bun, Deno, Workers, edge):
 * bundled for the neutral platform with ESM conditions, its whole module graph (the core's
 * neutral entry included) imports no `node:` builtin and no undici.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nodeOnlyImports as externalImports } from '../../core/test/bundle-imports.js';

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
