// Measuring one run of ours (node dist/index.js, or dist/cli.js) through timing proxies: a Sample.
// A peer's run (peers.ts) gives a Sample too, or a Failed.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { NODE, runAction } from '../__tests__/helpers/action.js'
import { CLI } from '../__tests__/helpers/cli.js'
import { kindOf, resetProbe, type Hit, type Probe, type ProbeFront } from './probe.js'
import { EXTRA_INPUTS } from './settings.js'

export interface Sample {
  wallMs: number
  requests: number
  /** First arrival to last response at the proxies. */
  spanMs: number
  maxInFlight: number
  peakRss?: number
  kinds: Map<string, number>
  hits: Hit[]
  /** The retries the action logged (`retry N for ...`); ours only. */
  retries?: number
}

/**
 * A peer's run that gave no timing: why, and how: 'cannot' when the peer cannot take the
 * scenario's sources at all (as the scenario expects), 'failed' when its command failed anyway,
 * 'wrong' when it exited 0 but pushed something other than the index asked for.
 */
export interface Failed {
  failed: string
  how: 'cannot' | 'failed' | 'wrong'
}

export const isFailed = (s: Sample | Failed): s is Failed => 'failed' in s

export function collect(probes: Probe<ProbeFront>[], wallMs: number, peakRss?: number): Sample {
  const hits = probes.flatMap((p) => p.hits)
  const kinds = new Map<string, number>()
  for (const h of hits) {
    const k = kindOf(h.method, h.path)
    kinds.set(k, (kinds.get(k) ?? 0) + 1)
  }
  const first = Math.min(...hits.map((h) => h.arrived))
  const last = Math.max(...hits.map((h) => h.done ?? h.arrived))
  return {
    wallMs,
    requests: probes.reduce((n, p) => n + p.proxy.requests.length, 0),
    spanMs: hits.length ? last - first : 0,
    maxInFlight: Math.max(...probes.map((p) => p.proxy.maxInFlight)),
    peakRss,
    kinds,
    hits
  }
}

/** One run of the action through `probes`, with `env` added to its environment. */
export async function runOurs(
  inputs: Record<string, string>,
  probes: Probe<ProbeFront>[],
  env: Record<string, string> = {}
): Promise<Sample> {
  probes.forEach(resetProbe)
  const t0 = performance.now()
  const run = await runAction({ ...inputs, ...EXTRA_INPUTS }, env)
  const wallMs = performance.now() - t0
  if (run.code !== 0) {
    throw new Error(`the action failed (exit ${run.code}):\n${run.stdout}\n${run.stderr}`)
  }
  if (!/^sha256:[0-9a-f]{64}$/.test(run.outputs.digest ?? '')) {
    throw new Error(`the action set no digest output:\n${run.stdout}`)
  }
  const retries = run.stdout.match(/^retry \d+ for /gm)?.length ?? 0
  return { ...collect(probes, wallMs, run.peakRss), retries }
}

export interface CliTimed {
  wallMs: number
  /** Peak resident set size (VmHWM) of the process, in bytes. */
  peakRss: number
  stdout: string
}

/**
 * `node dist/cli.js ARGS` as a user runs it (only PATH and a fresh empty HOME in the
 * environment): wall time from spawn to exit, and peak RSS. Throws unless it exits 0.
 */
export async function runCliTimed(args: string[]): Promise<CliTimed> {
  const home = await mkdtemp(path.join(os.tmpdir(), 'mm-bench-cli-'))
  try {
    let peakRss = 0
    const t0 = performance.now()
    const child = spawn(NODE, [CLI, ...args], {
      env: { PATH: process.env.PATH, HOME: home },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    // VmHWM is the kernel's own high-water mark: sampling it often enough near the end is exact.
    const timer = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))
        if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024)
      } catch {
        // the process has exited
      }
    }, 20)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const code = await new Promise<number>((done, fail) => {
      child.on('error', fail)
      child.on('close', (c) => done(c ?? -1))
    }).finally(() => clearInterval(timer))
    const wallMs = performance.now() - t0
    if (code !== 0) {
      throw new Error(`multiarch-merge ${args.join(' ')} exited ${code}:\n${stdout}\n${stderr}`)
    }
    return { wallMs, peakRss, stdout }
  } finally {
    await rm(home, { recursive: true, force: true })
  }
}

/** BENCH_INPUT_* as command-line options (`--max-concurrency=32`), for runs of dist/cli.js. */
export const EXTRA_OPTIONS = Object.entries(EXTRA_INPUTS).map(([k, v]) => `--${k}=${v}`)
