// Bundles src/index.ts into dist/index.js (ESM) for runs.using: node24, and src/cli.ts into
// dist/cli.js (package.json bin); what they share, and what only a plan loads, in dist/chunks/.
// The createRequire banner lets CJS dependencies call require() for Node built-ins inside an ESM bundle.
import { build } from 'esbuild'
import { rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, resolve } from 'node:path'

// Anything that still imports undici gets ours, so that one copy ships.
const undici = dirname(createRequire(import.meta.url).resolve('undici/package.json'))

/** @actions/http-client (imported by @actions/core for OIDC only) becomes a stub: see the file. */
const stubHttpClient = {
  name: 'stub-actions-http-client',
  setup(b) {
    b.onResolve({ filter: /^@actions\/http-client(\/|$)/ }, () => ({
      path: resolve('scripts/stubs/actions-http-client.mjs')
    }))
  }
}

// Chunk names carry a hash: chunks of an earlier bundle must not linger.
rmSync('dist', { recursive: true, force: true })

await build({
  entryPoints: ['src/index.ts', 'src/cli.ts'],
  outdir: 'dist',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  legalComments: 'none',
  minify: false,
  sourcemap: false,
  logLevel: 'warning',
  alias: { undici },
  plugins: [stubHttpClient],
  banner: {
    js: "import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);"
  }
})
