// The benchmark's settings, read once from BENCH_* environment variables (see bench/README.md),
// and the progress line writer (stderr).
import { execFileSync } from 'node:child_process'

function envInt(name: string, dflt: number, min: number): number {
  const v = (process.env[name] ?? '').trim()
  if (v === '') return dflt
  if (!/^\d+$/.test(v) || Number(v) < min) {
    throw new Error(`${name}="${v}" is not a whole number >= ${min}`)
  }
  return Number(v)
}

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export const DELAY_MS = envInt('BENCH_DELAY_MS', 50, 0)
export const RUNS = envInt('BENCH_RUNS', 3, 1)
export const LAYER_MB = envInt('BENCH_LAYER_MB', 100, 1)
export const STARTUP_RUNS = envInt('BENCH_STARTUP_RUNS', 7, 1)
export const ONLY = (process.env.BENCH_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
export const BUILDAH = process.env.BENCH_BUILDAH !== '0' && hasCommand('buildah')
export const DOCKER = process.env.BENCH_DOCKER !== '0' && hasCommand('docker')
/** podman is installed on demand (peers.ts) unless BENCH_PODMAN=0. */
export const PODMAN = process.env.BENCH_PODMAN !== '0'
/** The per-request delay the docker-manifest target is stated at: a 2-source scenario of its own. */
export const TARGET_DELAY_MS = 30
/** BENCH_INPUT_MAX_CONCURRENCY=32 sets the action's max-concurrency input in every run of ours. */
export const EXTRA_INPUTS: Record<string, string> = Object.fromEntries(
  Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_INPUT_'))
    .map(([k, v]) => [k.slice('BENCH_INPUT_'.length).toLowerCase().replace(/_/g, '-'), v ?? ''])
)

export const TIMELINE = process.env.BENCH_TIMELINE === '1'

export const progress = (m: string): void => void process.stderr.write(`[bench] ${m}\n`)
