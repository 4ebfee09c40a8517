// Startup figures: spawn to the first request reaching the proxy, for bare node and for
// node dist/index.js, measured with no proxy delay.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { DIST, NODE } from '../__tests__/helpers/action.js'
import { resetProbe, type Probe } from './probe.js'
import { median } from './report.js'
import type { Scenario } from './scenarios.js'
import { EXTRA_INPUTS, STARTUP_RUNS } from './settings.js'

export interface BundleSize {
  bytes: number
  /** The files (dist/chunks/) the entry requires as it loads, counted in `bytes`. */
  chunks: number
}

/**
 * The size of a bundle entry and of every file it requires as it loads (a require("./...") at
 * the top level of the CommonJS bundle), as node reads them at startup. What is required inside
 * a function, on first use, is not counted: undici (proxies) and the YAML parser (plans).
 */
export async function bundleSize(entry: string): Promise<BundleSize> {
  const seen = new Set<string>()
  let bytes = 0
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return
    seen.add(file)
    const text = await readFile(file, 'utf8')
    bytes += Buffer.byteLength(text)
    const topLevel = /^\S[^\n]*\brequire\("(\.\.?\/[^"]+)"\)/gm
    for (const m of text.matchAll(topLevel)) await visit(path.resolve(path.dirname(file), m[1]))
  }
  await visit(path.resolve(entry))
  return { bytes, chunks: seen.size - 1 }
}

interface Spawned {
  firstRequestMs: number
  /** From the last response leaving the proxy to the process's exit. */
  tailMs: number
  exitMs: number
}

async function spawnTimed(args: string[], env: NodeJS.ProcessEnv, probe: Probe): Promise<Spawned> {
  resetProbe(probe)
  const t0 = performance.now()
  const child = spawn(NODE, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stdout.resume()
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)))
  const exited = performance.now()
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${err}`)
  if (probe.hits.length === 0) throw new Error(`${args.join(' ')} sent no request`)
  return {
    firstRequestMs: Math.min(...probe.hits.map((h) => h.arrived)) - t0,
    tailMs: exited - Math.max(...probe.hits.map((h) => h.done ?? h.arrived)),
    exitMs: exited - t0
  }
}

export interface StartupResult {
  nodeExitMs: number
  nodeFirstRequestMs: number
  actionFirstRequestMs: number
  actionTailMs: number
  actionExitMs: number
}

export async function measureStartup(skip: Scenario): Promise<StartupResult> {
  const nodeExit: number[] = []
  const nodeFirst: number[] = []
  const actionFirst: number[] = []
  const actionExit: number[] = []
  const actionTail: number[] = []
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-bench-startup-'))
  try {
    for (let i = 0; i < STARTUP_RUNS; i++) {
      const { inputs, probes } = await skip.ours(1000 + i)
      const probe = probes[0]
      // No delay: the first request's arrival is then exact, and the exit time is startup
      // plus the work at zero latency.
      probe.proxy.delayMs = 0
      try {
        const t0 = performance.now()
        execFileSync(NODE, ['-e', '0'], { env: { PATH: process.env.PATH } })
        nodeExit.push(performance.now() - t0)
        const get = `require('node:http').get(process.env.URL, (r) => r.resume())`
        const bare = await spawnTimed(
          ['-e', get],
          { PATH: process.env.PATH, URL: `${probe.proxy.url}/v2/` },
          probe
        )
        nodeFirst.push(bare.firstRequestMs)
        const out = path.join(dir, `out-${i}`)
        await writeFile(out, '')
        const env: NodeJS.ProcessEnv = {
          PATH: process.env.PATH,
          HOME: dir,
          GITHUB_OUTPUT: out,
          GITHUB_STEP_SUMMARY: path.join(dir, `summary-${i}`),
          GITHUB_ACTIONS: 'true',
          RUNNER_TEMP: dir
        }
        await writeFile(env.GITHUB_STEP_SUMMARY!, '')
        for (const [k, v] of Object.entries({ ...inputs, ...EXTRA_INPUTS }))
          env[`INPUT_${k.toUpperCase()}`] = v
        const action = await spawnTimed([DIST], env, probe)
        actionFirst.push(action.firstRequestMs)
        actionExit.push(action.exitMs)
        actionTail.push(action.tailMs)
      } finally {
        await probe.proxy.stop()
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return {
    nodeExitMs: median(nodeExit),
    nodeFirstRequestMs: median(nodeFirst),
    actionFirstRequestMs: median(actionFirst),
    actionTailMs: median(actionTail),
    actionExitMs: median(actionExit)
  }
}
