// Scoped credentials as docker/login-action's `scope` input leaves them (a docker config under
// <buildx>/config/<registry>/<repository>@<actions>/config.json), used by a full in-process merge
// against the real Distribution registry with token auth. The token server records which user
// each token request authenticated as: that is the proof of which credentials were sent.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { getManifest, pushImage } from '../helpers/oci.js'
import { startProxy, type TestProxy } from '../helpers/proxy.js'
import { startRegistry, type TestRegistry } from '../helpers/registry.js'
import { startTokenServer, type TokenServer } from '../helpers/token-server.js'
import { parseInputs } from '../../src/inputs.js'
import { silentLogger } from '../../src/logger.js'
import { merge } from '../../src/merge.js'
import { createClient } from '../../src/runner.js'
import { readDockerConfig, StaticCredentials } from '../../src/registry/credentials.js'
import { readScopedConfigs } from '../../src/registry/scoped-credentials.js'

const READER = { user: 'reader', password: 'rd-Corr3ct-Horse' }
const PUSHER = { user: 'pusher', password: 'pu-Batt3ry-Staple' }
const b64 = (s: string): string => Buffer.from(s).toString('base64')
const auths = (host: string, c: { user: string; password: string }): string =>
  JSON.stringify({ auths: { [host]: { auth: b64(`${c.user}:${c.password}`) } } })

const temps: string[] = []
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })))
})
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-scoped-it-'))
  temps.push(dir)
  return dir
}
/** Writes `<root>/<key>/config.json`, as `docker --config <root>/<key> login` would. */
async function writeConfig(root: string, key: string, text: string): Promise<string> {
  const dir = join(root, ...key.split('/'))
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'config.json'), text)
  return join(dir, 'config.json')
}

describe('scoped docker configs in a merge', () => {
  let ts: TokenServer
  let reg: TestRegistry
  let admin: TestProxy
  let sources: string

  beforeAll(async () => {
    ts = await startTokenServer({
      users: { [READER.user]: READER.password, [PUSHER.user]: PUSHER.password }
    })
    reg = await startRegistry({
      token: {
        realm: ts.realm,
        service: ts.service,
        issuer: ts.issuer,
        rootCertBundle: ts.certFile
      }
    })
    // Fixtures go in behind the product's back, each request with a token of its own.
    admin = await startProxy(reg.url)
    admin.rules.push((req) => {
      const name = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(req.url ?? '')?.[1]
      if (name) req.headers.authorization = `Bearer ${ts.mint([`repository:${name}:pull,push`])}`
      return false
    })
    const amd = await pushImage(admin, 'src/app', { arch: 'amd64', seed: 'scoped' })
    const arm = await pushImage(admin, 'src/app', { arch: 'arm64', variant: 'v8', seed: 'scoped' })
    sources = `${reg.host}/src/app@${amd.digest}\n${reg.host}/src/app@${arm.digest}`
  })
  afterAll(async () => {
    await admin?.stop()
    await reg?.stop()
    await ts?.stop()
  })

  /** Merges with the credentials main.ts would find in `env`; returns the store's log lines. */
  async function mergeIn(env: NodeJS.ProcessEnv, repo: string): Promise<string[]> {
    const lines: string[] = []
    const inputs = parseInputs((n) => ({ tags: `${reg.host}/${repo}:1`, sources })[n] ?? '')
    const client = createClient(inputs, {
      credentials: new StaticCredentials({
        explicit: inputs.credentials,
        config: readDockerConfig(env),
        scoped: readScopedConfigs(env),
        log: (l) => lines.push(l)
      })
    })
    try {
      const r = await merge(client, inputs, silentLogger)
      expect((await getManifest(admin, repo, '1'))?.digest).toBe(r.index.digest)
    } finally {
      await client.close()
    }
    return lines
  }

  it('pushes with the credentials scoped to the target (DOCKER_CONFIG/buildx), not config.json', async () => {
    const docker = await tempDir()
    await writeFile(join(docker, 'config.json'), auths(reg.host, READER))
    const scoped = await writeConfig(
      join(docker, 'buildx', 'config'),
      `${reg.host}/dst/app@push`,
      auths(reg.host, PUSHER)
    )
    ts.requests.length = 0
    const lines = await mergeIn({ DOCKER_CONFIG: docker, HOME: docker }, 'dst/app')
    expect(ts.requests.length).toBeGreaterThan(0)
    expect(ts.requests.map((t) => [t.user, t.status])).toEqual(
      ts.requests.map(() => [PUSHER.user, 200])
    )
    expect(ts.requests[0].scopes).toContain('repository:dst/app:pull,push')
    expect(lines).toEqual([`credentials for ${reg.host}: the scoped docker config ${scoped}`])
    expect(lines.join('\n')).not.toContain(PUSHER.password)
  })

  it('uses config.json when no scoped config covers the repositories (BUILDX_CONFIG)', async () => {
    const docker = await tempDir()
    const buildx = await tempDir()
    await writeFile(join(docker, 'config.json'), auths(reg.host, READER))
    // Configs for other repositories of the same registry, and for the target on another registry.
    await writeConfig(join(buildx, 'config'), `${reg.host}/dst/other@push`, auths(reg.host, PUSHER))
    await writeConfig(join(buildx, 'config'), `${reg.host}/src/other@pull`, auths(reg.host, PUSHER))
    await writeConfig(join(buildx, 'config'), 'ghcr.io/dst/web@push', auths('ghcr.io', PUSHER))
    // The DOCKER_CONFIG/buildx tree is not read when BUILDX_CONFIG is set.
    await writeConfig(
      join(docker, 'buildx', 'config'),
      `${reg.host}/dst/web@push`,
      auths(reg.host, PUSHER)
    )
    ts.requests.length = 0
    const lines = await mergeIn(
      { DOCKER_CONFIG: docker, BUILDX_CONFIG: buildx, HOME: docker },
      'dst/web'
    )
    expect(ts.requests.length).toBeGreaterThan(0)
    expect(ts.requests.map((t) => t.user)).toEqual(ts.requests.map(() => READER.user))
    expect(lines).toEqual([])
  })
})
