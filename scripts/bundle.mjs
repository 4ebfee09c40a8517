// Bundles src/index.ts into dist/index.js for runs.using: node24, and src/cli.ts into dist/cli.js
// (package.json bin), as CommonJS: an ES module entry costs Node its ESM loader (resolve, link,
// a facade per built-in module) before the first line runs, 4-10 ms of every start. Each entry is
// one file; what only some runs need is a file of its own in dist/chunks/, loaded with require()
// on first use: undici (requests through a proxy) and the YAML parser (release plans).
import { build } from 'esbuild'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'

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
 * The toolkit's modules are side-effect free as far as the bundle is concerned, so that what the
 * action does not use is left out: @actions/core's summary and @actions/io read fs.promises at
 * load (its module graph is ~2 ms of start-up), for a summary we write ourselves and an exec we
 * never run. (Their package.json files do not say "sideEffects": false themselves.)
 */
const toolkitPure = {
  name: 'toolkit-pure',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'toolkit-pure') return undefined
      const fromToolkit = /[\\/]node_modules[\\/]@actions[\\/]/.test(args.importer)
      if (!fromToolkit && !args.path.startsWith('@actions/')) return undefined
      const { path, external, namespace, errors } = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'toolkit-pure'
      })
      return errors.length > 0 ? { errors } : { path, external, namespace, sideEffects: false }
    })
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

/**
 * The lazily loaded parts stay out of the entries: transport.ts's import('./undici.js') and
 * release-plan.ts's import('yaml') become require('./chunks/....js'), built below. Nothing else
 * may import them: a module in two files would be two modules (two classes for instanceof).
 */
const lazyChunks = {
  name: 'lazy-chunks',
  setup(b) {
    b.onResolve({ filter: /^\.\/undici\.js$/ }, (args) =>
      args.importer.endsWith(join('src', 'registry', 'transport.ts'))
        ? { path: './chunks/undici.js', external: true }
        : undefined
    )
    b.onResolve({ filter: /^yaml$/ }, (args) =>
      args.importer.endsWith(join('src', 'release-plan.ts'))
        ? { path: './chunks/yaml.js', external: true }
        : undefined
    )
  }
}

rmSync('dist', { recursive: true, force: true })
mkdirSync('dist')

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // import() of a chunk becomes require(): the ESM loader is never needed.
  supported: { 'dynamic-import': false },
  legalComments: 'none',
  minify: false,
  sourcemap: false,
  logLevel: 'warning',
  alias: { undici },
  plugins: [lazyChunks, toolkitPure, stubHttpClient]
}
// The entries get the lazy node:crypto; the chunks load after start-up, and undici's require() of
// crypto may read any of its names (the stub has two).
const entry = { ...common, plugins: [...common.plugins, lazyCrypto] }
const results = await Promise.all([
  build({ ...entry, entryPoints: ['src/index.ts'], outfile: 'dist/index.js' }),
  build({ ...entry, entryPoints: ['src/cli.ts'], outfile: 'dist/cli.js' }),
  build({ ...common, entryPoints: ['src/registry/undici.ts'], outfile: 'dist/chunks/undici.js' }),
  build({ ...common, entryPoints: ['yaml'], outfile: 'dist/chunks/yaml.js' })
])
// package.json says "type": "module" for src; dist's .js files are CommonJS.
writeFileSync('dist/package.json', '{ "type": "commonjs" }\n')
if (results.some((r) => r.warnings.length > 0)) {
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
