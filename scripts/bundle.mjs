// Bundles src/index.ts into dist/index.js (ESM) for runs.using: node24, and src/cli.ts into
// dist/cli.js (package.json bin); what they share, and what only a plan loads, in dist/chunks/.
// The createRequire banner lets CJS dependencies call require() for Node built-ins inside an ESM bundle.
import { build } from 'esbuild'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
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

/**
 * node:crypto loads on first use: its 18 modules are ~11 ms of Node 24's start, and nothing needs
 * it before the first answer (digests) or the first output (@actions/core's delimiter). Only the
 * names the bundle uses are exported, and a warning fails the build: a name missing here would
 * be undefined at run time.
 */
const lazyCrypto = {
  name: 'lazy-crypto',
  setup(b) {
    b.onResolve({ filter: /^(node:)?crypto$/ }, (args) =>
      // The stub's own require() is of the real module.
      args.namespace === 'lazy' ? undefined : { path: 'crypto', namespace: 'lazy' }
    )
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: [
        'let loaded',
        "const crypto = () => (loaded ??= require('node:crypto'))",
        'export const createHash = (...a) => crypto().createHash(...a)',
        'export const randomUUID = (...a) => crypto().randomUUID(...a)'
      ].join('\n'),
      loader: 'js'
    }))
  }
}

// Chunk names carry a hash: chunks of an earlier bundle must not linger.
rmSync('dist', { recursive: true, force: true })

const result = await build({
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
  plugins: [stubHttpClient, lazyCrypto],
  banner: {
    js: "import { createRequire as __mmCreateRequire } from 'node:module'; const require = __mmCreateRequire(import.meta.url);"
  }
})
if (result.warnings.length > 0) {
  console.error('bundle: esbuild warned; fix the warnings above')
  process.exit(1)
}
// One non-ASCII character (a "§" in a kept comment) makes V8 hold a whole file as a two-byte
// string, decoded from UTF-8 on the slow path: twice the memory of its source at every start.
for (const file of readdirSync('dist', { recursive: true, encoding: 'utf8' })) {
  if (!file.endsWith('.js')) continue
  const text = readFileSync(`dist/${file}`, 'latin1')
  const at = text.search(/[^\x00-\x7f]/)
  if (at >= 0) {
    const line = text.slice(0, at).split('\n').length
    console.error(`bundle: dist/${file}:${line} is not ASCII; write the character in src as ASCII`)
    process.exit(1)
  }
}
