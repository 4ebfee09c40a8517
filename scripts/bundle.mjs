// Bundles src/index.ts into dist/index.js (ESM) for runs.using: node24.
// The createRequire banner lets CJS dependencies call require() for Node built-ins inside an ESM bundle.
import { build } from 'esbuild'

await build({
  entryPoints: ['src/index.ts'],
  outfile: 'dist/index.js',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  legalComments: 'none',
  minify: false,
  sourcemap: false,
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);"
  }
})
