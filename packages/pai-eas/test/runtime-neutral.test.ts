import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('runtime neutrality', () => {
  it('bundles for a neutral platform without any node: builtin', async () => {
    const result = await build({
      entryPoints: [fileURLToPath(new URL('../src/index.ts', import.meta.url))],
      bundle: true,
      write: false,
      platform: 'neutral',
      format: 'esm',
      metafile: true,
      logLevel: 'silent',
      // The core is a separate package (its neutral entry has its own bundle test); what this
      // package itself brings must be neutral.
      external: ['@dashscope-token/core/neutral'],
    });
    const imports = Object.values(result.metafile.inputs).flatMap((input) =>
      input.imports.map((i) => i.path),
    );
    expect(imports.filter((path) => path.startsWith('node:') || path === 'undici')).toEqual([]);
    const core = imports.filter((path) => path.startsWith('@dashscope-token/core'));
    expect(new Set(core)).toEqual(new Set(['@dashscope-token/core/neutral']));
  });
});
