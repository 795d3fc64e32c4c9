import { defineConfig } from 'tsup';
import { libraryBuild } from '../../tsup.base.js';

export default defineConfig({
  ...libraryBuild,
  entry: ['src/index.ts', 'src/neutral.ts', 'src/opentelemetry.ts'],
  // One copy of shared modules (DashScopeError, the engine) for both entry points.
  splitting: true,
});
