// Runs a TypeScript script (demo, benchmark) by bundling it with esbuild into a temporary ESM file.
// Packages stay external; only the project's own .ts files are compiled.
import { build } from 'esbuild'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [entry, ...args] = process.argv.slice(2)
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs FILE.ts [args...]')
  process.exit(2)
}
const dir = mkdtempSync(join(resolve('node_modules'), '.run-ts-'))
const outfile = join(dir, 'script.mjs')
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  logLevel: 'warning'
})
process.argv = [process.argv[0], entry, ...args]
try {
  await import(pathToFileURL(outfile).href)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
