// An entry point whose main promise never settles fails instead of exiting 0 (dist is CommonJS,
// where Node exits quietly once nothing is left to wait on).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { build } from 'esbuild'

let dir: string
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'run-to-end-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Bundles `main` into a CommonJS entry that runs it with runToEnd, as dist does, and runs it. */
async function runEntry(
  name: string,
  main: string
): Promise<{ code: number; stdout: string; stderr: string }> {
  const entry = join(dir, `${name}.ts`)
  await writeFile(
    entry,
    [
      `import { runToEnd } from ${JSON.stringify(resolve('src/util/run-to-end.ts'))}`,
      `runToEnd(${main}, () => {`,
      `  process.stdout.write('unfinished\\n')`,
      '  process.exitCode = 7',
      '})'
    ].join('\n')
  )
  const outfile = join(dir, `${name}.cjs`)
  await build({ entryPoints: [entry], outfile, bundle: true, platform: 'node', format: 'cjs' })
  return new Promise((done) =>
    execFile(process.execPath, [outfile], (err, stdout, stderr) =>
      done({ code: err ? Number(err.code) : 0, stdout, stderr })
    )
  )
}

describe('runToEnd', () => {
  it('reports a main promise that can never settle, and sets the exit code', async () => {
    const run = await runEntry('never', '() => new Promise(() => {})')
    expect(run.stdout).toBe('unfinished\n')
    expect(run.code).toBe(7)
  })

  it('leaves a run that finishes alone, however long it waits', async () => {
    const run = await runEntry(
      'finishes',
      "async () => { await new Promise((r) => setTimeout(r, 50)); process.stdout.write('done\\n') }"
    )
    expect(run.stdout).toBe('done\n')
    expect(run.code).toBe(0)
  })

  it('lets a rejection end the process as unhandled: printed, exit 1', async () => {
    const run = await runEntry('rejects', "async () => { throw new Error('boom') }")
    expect(run.stdout).toBe('')
    expect(run.stderr).toContain('Error: boom')
    expect(run.code).toBe(1)
  })
})
