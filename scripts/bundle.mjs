// Bundles src/index.ts into dist/index.js (ESM) for runs.using: node24.
// The createRequire banner lets CJS dependencies call require() for Node built-ins inside an ESM bundle.
import { build } from 'esbuild'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'

// @actions/http-client pins its own undici 6; point every import at ours so one copy ships.
const undici = dirname(createRequire(import.meta.url).resolve('undici/package.json'))

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
  alias: { undici },
  banner: {
    js: "import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);"
  }
})
