// Test helper: wrappers around the real container CLIs (buildah, skopeo).
//
// buildah runs with the vfs driver (no overlay/fuse here) and, per call, a private --root/--runroot
// in a temp dir: parallel jest workers never contend on /var/lib/containers locks, nothing is left
// in the shared store, and cleanup is just removing the temp dir.
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

export interface ToolRegistry {
  host: string
  auth?: { user: string; password: string }
  /** Directory holding the CA as *.crt (TestRegistry.caDir); enables TLS verification. */
  caDir?: string
}

export async function runTool(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string } = {}
): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...(opts.env ?? {}) },
      maxBuffer: 64 * 1024 * 1024
    })
    return stdout
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string; code?: unknown }
    throw new Error(
      `${cmd} ${args.join(' ')} failed (exit ${String(err.code)}): ${err.stderr || err.message}${
        err.stdout ? `\nstdout: ${err.stdout}` : ''
      }`
    )
  }
}

let counter = 0
function uniqueName(prefix: string): string {
  counter++
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`
}

/** Runs buildah calls in a private, temporary store (vfs), removed afterwards. */
export async function withBuildah<T>(
  fn: (buildah: (args: string[]) => Promise<string>, tmp: string) => Promise<T>
): Promise<T> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mam-buildah-'))
  const base = [
    '--storage-driver',
    'vfs',
    '--root',
    path.join(tmp, 'root'),
    '--runroot',
    path.join(tmp, 'runroot')
  ]
  const env = { STORAGE_DRIVER: 'vfs', BUILDAH_ISOLATION: 'chroot' }
  try {
    return await fn((args) => runTool('buildah', [...base, ...args], { env }), tmp)
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => {})
  }
}

function registryArgs(opts: { creds?: string; caDir?: string }): string[] {
  const a: string[] = []
  if (opts.caDir) a.push('--tls-verify=true', '--cert-dir', opts.caDir)
  else a.push('--tls-verify=false')
  if (opts.creds) a.push('--creds', opts.creds)
  return a
}

function credsOf(reg: ToolRegistry): string | undefined {
  return reg.auth ? `${reg.auth.user}:${reg.auth.password}` : undefined
}

/**
 * Build a tiny FROM-scratch image with buildah (one file, content includes arch and `content`),
 * push it to reg.host/repo:tag and return the pushed manifest digest.
 */
export async function buildahImage(
  reg: ToolRegistry,
  repo: string,
  tag: string,
  opts: {
    arch: string
    variant?: string
    os?: string
    format: 'docker' | 'oci'
    content?: string
    /** commit --timestamp (epoch seconds) for reproducible digests; default: now. */
    timestamp?: number
  }
): Promise<string> {
  return withBuildah(async (buildah, tmp) => {
    const name = uniqueName('mam-ctr')
    const image = `localhost/${uniqueName('mam-img')}`
    const file = path.join(tmp, 'payload.txt')
    await writeFile(
      file,
      `os=${opts.os ?? 'linux'} arch=${opts.arch} variant=${opts.variant ?? ''}\n${opts.content ?? ''}\n`
    )
    const ctr = (await buildah(['from', '--quiet', '--name', name, 'scratch'])).trim()
    let committed = false
    try {
      await buildah(['copy', '--quiet', ctr, file, '/payload.txt'])
      const cfg = ['config', '--arch', opts.arch, '--os', opts.os ?? 'linux']
      if (opts.variant) cfg.push('--variant', opts.variant)
      await buildah([...cfg, ctr])
      const commit = ['commit', '--quiet', '--rm', '--format', opts.format]
      if (opts.timestamp !== undefined) commit.push('--timestamp', String(opts.timestamp))
      await buildah([...commit, ctr, image])
      committed = true
      const digestFile = path.join(tmp, 'digest')
      await buildah([
        'push',
        '--quiet',
        ...registryArgs({ creds: credsOf(reg), caDir: reg.caDir }),
        '--digestfile',
        digestFile,
        image,
        `docker://${reg.host}/${repo}:${tag}`
      ])
      const digest = (await readFile(digestFile, 'utf8')).trim()
      if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new Error(`bad digestfile: ${digest}`)
      await buildah(['rmi', image]).catch(() => {})
      return digest
    } finally {
      if (!committed) await buildah(['rm', ctr]).catch(() => {})
    }
  })
}

/** `skopeo inspect --raw` of docker://REF (TLS verification only when caDir is given). */
export async function skopeoInspectRaw(
  ref: string,
  opts: { creds?: string; caDir?: string } = {}
): Promise<string> {
  return runTool('skopeo', ['inspect', '--raw', ...registryArgs(opts), `docker://${ref}`])
}

/** `skopeo inspect --config` (the image config JSON; platform-selected for indexes). */
export async function skopeoInspectConfig(
  ref: string,
  opts: { creds?: string; caDir?: string; arch?: string; variant?: string; os?: string } = {}
): Promise<string> {
  const a: string[] = []
  if (opts.arch) a.push('--override-arch', opts.arch)
  if (opts.variant) a.push('--override-variant', opts.variant)
  if (opts.os) a.push('--override-os', opts.os)
  return runTool('skopeo', [...a, 'inspect', '--config', ...registryArgs(opts), `docker://${ref}`])
}

/**
 * `skopeo copy --all docker://REF oci:DESTDIR`. Note: an oci: layout only takes OCI media types, so
 * skopeo converts Docker lists/manifests (changing their digests). With preserveDigests it fails
 * instead of converting (fine for all-OCI images such as buildx attestation indexes).
 */
export async function skopeoCopyAll(
  ref: string,
  destDir: string,
  opts: { creds?: string; caDir?: string; preserveDigests?: boolean } = {}
): Promise<void> {
  const src: string[] = []
  if (opts.caDir) src.push('--src-tls-verify=true', '--src-cert-dir', opts.caDir)
  else src.push('--src-tls-verify=false')
  if (opts.creds) src.push('--src-creds', opts.creds)
  await runTool('skopeo', [
    'copy',
    '--all',
    ...(opts.preserveDigests ? ['--preserve-digests'] : []),
    '--quiet',
    ...src,
    `docker://${ref}`,
    `oci:${destDir}`
  ])
}

/**
 * `buildah pull --arch ARCH docker://REF` into a private store, then `buildah inspect --type image`.
 * Returns the pulled image ID and the platform/digest buildah resolved. The store is removed after.
 */
export async function buildahPullArch(
  ref: string,
  arch: string,
  opts: { variant?: string; os?: string; creds?: string; caDir?: string } = {}
): Promise<{
  id: string
  architecture: string
  os: string
  variant?: string
  digest: string
}> {
  return withBuildah(async (buildah) => {
    const args = ['pull', '--quiet', '--arch', arch]
    if (opts.variant) args.push('--variant', opts.variant)
    if (opts.os) args.push('--os', opts.os)
    const out = await buildah([...args, ...registryArgs(opts), `docker://${ref}`])
    const id = out.trim().split('\n').pop()!.trim()
    const info = JSON.parse(await buildah(['inspect', '--type', 'image', id])) as {
      FromImageID?: string
      FromImageDigest?: string
      OCIv1?: { architecture?: string; os?: string; variant?: string }
      Docker?: { architecture?: string; os?: string; variant?: string }
    }
    await buildah(['rmi', id]).catch(() => {})
    const cfg = info.OCIv1 ?? info.Docker ?? {}
    return {
      id,
      architecture: cfg.architecture ?? '',
      os: cfg.os ?? '',
      variant: cfg.variant || undefined,
      digest: info.FromImageDigest ?? ''
    }
  })
}
