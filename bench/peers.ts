// The peers: buildah's, the docker CLI's and podman's manifest commands, each run through the
// same kind of timing proxy as ours, in a private store (HOME, DOCKER_CONFIG, --root/--runroot),
// and the check that what a peer pushed is the index the scenario asked for.
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { getManifest } from '../__tests__/helpers/oci.js'
import type { Platform } from '../__tests__/helpers/oci.js'
import type { TestRegistry } from '../__tests__/helpers/registry.js'
import { runTool, withBuildah } from '../__tests__/helpers/tools.js'
import { collect, type Failed, type Sample } from './measure.js'
import { resetProbe, type Probe } from './probe.js'
import { hasCommand, progress } from './settings.js'

export const PEERS = ['buildah', 'docker', 'podman'] as const
export type PeerId = (typeof PEERS)[number]

/** How the report names each peer. */
export const PEER_NAME: Record<PeerId, string> = {
  buildah: 'buildah',
  docker: 'docker manifest',
  podman: 'podman'
}

/** One peer run of a scenario: what to merge, where to, through which proxies, and its check. */
export interface PeerRun {
  /** Source references (through the proxy), by digest. */
  sources: string[]
  /** Target reference (through the proxy), by tag. */
  target: string
  probes: Probe[]
  /** The sources are indexes (attestation-wrapped): buildah and podman add them with --all. */
  indexSources?: boolean
  /** Reads the target back from the registry: undefined when it is what was asked for. */
  verify(): Promise<string | undefined>
}

/** A peer's command failed: its own error message (its last "Error: ..." line, if any). */
class PeerError extends Error {}

function lastError(message: string): string {
  // runTool's message is "CMD ARGS... failed (exit N): STDERR": the command line is left out.
  const msg = message.replace(/^[\s\S]*? failed \(exit [^)]*\): /, '')
  const errors = [...msg.matchAll(/^error:\s*(.*)$/gim)].map((m) => m[1])
  const line = errors.at(-1) ?? msg.trim().split('\n').at(-1) ?? msg
  return line.trim().slice(0, 400)
}

async function tool(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  try {
    return await runTool(cmd, args, { env })
  } catch (e) {
    throw new PeerError(lastError((e as Error).message))
  }
}

/**
 * Runs one peer's commands (timed from the first spawn to the last exit), then, if they
 * succeeded, reads the target back: a peer that pushed something else is a Failed ('wrong'),
 * not a Sample.
 */
export async function runPeer(peer: PeerId, run: PeerRun): Promise<Sample | Failed> {
  run.probes.forEach(resetProbe)
  let wallMs: number
  try {
    wallMs = await RUNNERS[peer](run)
  } catch (e) {
    if (e instanceof PeerError) return { failed: e.message, how: 'failed' }
    throw e
  }
  const sample = collect(run.probes, wallMs)
  const wrong = await run.verify()
  return wrong === undefined ? sample : { failed: wrong, how: 'wrong' }
}

const LIST = 'mm-bench-list'

const RUNNERS: Record<PeerId, (run: PeerRun) => Promise<number>> = {
  /**
   * buildah manifest create / add (one per source) / push --all, with a private vfs store. Every
   * call passes --tls-verify=false, so buildah tries HTTPS first and falls back to plain HTTP.
   */
  buildah: (run) =>
    withBuildah(async (buildah) => {
      const call = (args: string[]): Promise<string> =>
        buildah(args).catch((e: Error) => {
          throw new PeerError(lastError(e.message))
        })
      const all = run.indexSources ? ['--all'] : []
      const t0 = performance.now()
      await call(['manifest', 'create', LIST])
      for (const s of run.sources) {
        await call(['manifest', 'add', ...all, '--tls-verify=false', LIST, `docker://${s}`])
      }
      await call([
        'manifest',
        'push',
        '--all',
        '--tls-verify=false',
        LIST,
        `docker://${run.target}`
      ])
      return performance.now() - t0
    }),

  /**
   * docker manifest create --insecure TARGET SOURCE... / push --insecure TARGET: client-side (no
   * daemon), with its own HOME and DOCKER_CONFIG (it keeps the list under ~/.docker/manifests).
   */
  docker: (run) =>
    withTemp('mm-bench-docker-', async (tmp) => {
      const env = { HOME: tmp, DOCKER_CONFIG: path.join(tmp, '.docker') }
      const t0 = performance.now()
      await tool('docker', ['manifest', 'create', '--insecure', run.target, ...run.sources], env)
      await tool('docker', ['manifest', 'push', '--insecure', run.target], env)
      return performance.now() - t0
    }),

  /**
   * podman manifest create / add (one per source) / push --all, as buildah's: a private vfs store
   * (--root/--runroot), its own HOME, --tls-verify=false on every call.
   */
  podman: (run) =>
    withTemp('mm-bench-podman-', async (tmp) => {
      const base = [
        '--storage-driver',
        'vfs',
        '--root',
        path.join(tmp, 'root'),
        '--runroot',
        path.join(tmp, 'runroot'),
        '--tmpdir',
        path.join(tmp, 'tmp'),
        '--events-backend',
        'none',
        '--cgroup-manager',
        'cgroupfs'
      ]
      const env = { HOME: tmp, XDG_RUNTIME_DIR: path.join(tmp, 'run'), STORAGE_DRIVER: 'vfs' }
      const podman = (args: string[]): Promise<string> => tool('podman', [...base, ...args], env)
      const all = run.indexSources ? ['--all'] : []
      const t0 = performance.now()
      await podman(['manifest', 'create', LIST])
      for (const s of run.sources) {
        await podman(['manifest', 'add', ...all, '--tls-verify=false', LIST, `docker://${s}`])
      }
      await podman([
        'manifest',
        'push',
        '--all',
        '--tls-verify=false',
        LIST,
        `docker://${run.target}`
      ])
      return performance.now() - t0
    })
}

async function withTemp<T>(prefix: string, f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  try {
    return await f(dir)
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => {})
  }
}

const platformOf = (p: Platform): string =>
  [p.os, p.architecture, p.variant].filter(Boolean).join('/')

/**
 * Reads `repo:tag` from the registry (directly, not through a proxy): it must be an index whose
 * platforms, attestation entries (unknown/unknown) left out, are exactly `want`, and whose every
 * entry is in the target repository. Returns what is wrong, or undefined.
 */
export async function verifyIndex(
  reg: TestRegistry,
  repo: string,
  tag: string,
  want: Platform[]
): Promise<string | undefined> {
  const m = await getManifest(reg, repo, tag)
  if (!m) return `pushed nothing to ${repo}:${tag}`
  const doc = JSON.parse(m.body) as {
    manifests?: Array<{ digest: string; platform?: Platform }>
  }
  if (!Array.isArray(doc.manifests)) return `pushed a ${m.mediaType || 'manifest'}, not an index`
  const got = doc.manifests
    .map((d) => (d.platform ? platformOf(d.platform) : 'no platform'))
    .filter((p) => p !== 'unknown/unknown')
    .sort()
  const expected = want.map(platformOf).sort()
  if (got.join() !== expected.join()) {
    return `pushed an index of ${got.length} platform(s) [${got.join(', ')}], not [${expected.join(', ')}]`
  }
  for (const d of doc.manifests) {
    if (!(await getManifest(reg, repo, d.digest))) {
      return `pushed an index listing ${d.digest}, which is not in ${repo}`
    }
  }
  return undefined
}

/**
 * podman is not on the machine image: the bench installs it (Debian's package) the first time it
 * needs it, as scripts/ensure-tools.sh does for the rest. Returns why it cannot run, or undefined.
 */
export function ensurePodman(): string | undefined {
  if (hasCommand('podman')) return undefined
  const root = process.getuid?.() === 0
  const apt = (args: string[]): void => {
    const [cmd, ...rest] = root ? ['apt-get', ...args] : ['sudo', 'apt-get', ...args]
    // apt's output goes to stderr: stdout is only the report.
    execFileSync(cmd, rest, {
      stdio: ['ignore', 2, 2],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    })
  }
  progress('podman is not installed: installing it for the bench (apt-get install -y podman)')
  try {
    apt(['update', '-qq'])
    apt(['install', '-y', '-qq', 'podman'])
  } catch (e) {
    return `podman could not be installed: ${(e as Error).message.split('\n')[0]}`
  }
  return hasCommand('podman') ? undefined : 'podman could not be installed'
}

/** `TOOL --version`, first line, for the report's header. */
export function versionOf(peer: PeerId): string {
  const cmd = peer === 'docker' ? ['docker', '--version'] : [peer, '--version']
  try {
    return execFileSync(cmd[0], cmd.slice(1), { encoding: 'utf8' }).trim().split('\n')[0]
  } catch {
    return `${peer} (version unknown)`
  }
}
