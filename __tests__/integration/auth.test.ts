// Credentials and auth flows against the real Distribution registry: token auth (with a token
// server made here), htpasswd Basic auth, TLS, credential helpers, and blob GETs redirected to
// another host. Every case is a full merge, in-process or as `node dist/index.js`.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { runAction, type ActionRun } from '../helpers/action.js'
import { mergeWith } from '../helpers/merge.js'
import {
  blobExists,
  getBlob,
  getManifest,
  pushAttestationWrapped,
  pushImage,
  type RegistryRef
} from '../helpers/oci.js'
import { startProxy, type TestProxy } from '../helpers/proxy.js'
import { snapshotStorage, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { startTokenServer, type TokenServer } from '../helpers/token-server.js'
import { createClient } from '../../src/runner.js'
import { parseInputs } from '../../src/inputs.js'
import { StaticCredentials } from '../../src/registry/credentials.js'

const USER = 'alice'
const PASSWORD = 'pw-Corr3ct-Horse'
const IDENTITY_TOKEN = 'idt-Batt3ry-Staple'
const b64 = (s: string): string => Buffer.from(s).toString('base64')

const temps: string[] = []
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  temps.push(dir)
  return dir
}
afterAll(async () => {
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })))
})

/** A DOCKER_CONFIG directory holding `config`. */
async function dockerConfig(config: unknown): Promise<string> {
  const dir = await tempDir('mm-docker-config-')
  await writeFile(join(dir, 'config.json'), JSON.stringify(config))
  return dir
}

/**
 * Proves no secret is ever printed: the only place one may appear is the runner's
 * `::add-mask::` command (which the runner swallows), and each secret read must appear there.
 */
function expectNeverPrinted(run: ActionRun, secrets: string[], masked: string[] = secrets): void {
  const lines = `${run.stdout}\n${run.stderr}`.split('\n')
  const printed = lines.filter((l) => !l.startsWith('::add-mask::'))
  for (const s of secrets) {
    expect(s.length).toBeGreaterThan(8)
    expect(printed.filter((l) => l.includes(s))).toEqual([])
  }
  for (const s of masked) expect(lines).toContain(`::add-mask::${s}`)
}

/** Tokens the token server issued from `from` on (the ones an action run was given). */
const issuedSince = (ts: TokenServer, from: number): string[] => ts.issued.slice(from)

describe('token auth', () => {
  let ts: TokenServer
  let reg: TestRegistry
  /** The registry behind a proxy that gives every request a token of its own: for fixtures. */
  let admin: TestProxy
  const fixtures = new Map<
    string,
    {
      amd: Awaited<ReturnType<typeof pushAttestationWrapped>>
      arm: Awaited<ReturnType<typeof pushImage>>
    }
  >()

  beforeAll(async () => {
    ts = await startTokenServer({
      users: { [USER]: PASSWORD },
      refreshTokens: { [IDENTITY_TOKEN]: USER },
      publicRepos: ['public/app']
    })
    reg = await startRegistry({
      token: {
        realm: ts.realm,
        service: ts.service,
        issuer: ts.issuer,
        rootCertBundle: ts.certFile
      }
    })
    admin = await startProxy(reg.url)
    admin.rules.push((req) => {
      const name = /^\/v2\/(.+?)\/(?:blobs|manifests|tags)\//.exec(req.url ?? '')?.[1]
      if (name) req.headers.authorization = `Bearer ${ts.mint([`repository:${name}:pull,push`])}`
      return false
    })
    for (const repo of ['src/app', 'public/app']) {
      fixtures.set(repo, {
        amd: await pushAttestationWrapped(admin, repo, { arch: 'amd64', seed: 'tok' }),
        arm: await pushImage(admin, repo, { arch: 'arm64', variant: 'v8', seed: 'tok' })
      })
    }
  })
  afterAll(async () => {
    await admin?.stop()
    await reg?.stop()
    await ts?.stop()
  })

  const sources = (repo = 'src/app'): string => {
    const { amd, arm } = fixtures.get(repo)!
    return `${reg.host}/${repo}@${amd.indexDigest}\n${reg.host}/${repo}@${arm.digest}`
  }

  it('asks for one token covering the target (push,pull) and the source (pull), and mounts', async () => {
    ts.requests.length = 0
    const r = await mergeWith({
      tags: `${reg.host}/dst/app:1`,
      sources: sources(),
      username: USER,
      password: PASSWORD
    })
    expect(ts.requests).toEqual([
      {
        method: 'GET',
        grant: 'basic',
        user: USER,
        account: USER,
        service: ts.service,
        scopes: ['repository:dst/app:pull,push', 'repository:src/app:pull'],
        status: 200
      }
    ])
    expect((await getManifest(admin, 'dst/app', '1'))?.digest).toBe(r.index.digest)
    const { amd, arm } = fixtures.get('src/app')!
    for (const layer of [...amd.image.layerDigests, ...arm.layerDigests])
      expect(await blobExists(admin, 'dst/app', layer)).toBe(true)
  })

  it('asks for a new token when the registry refuses an expired one', async () => {
    ts.requests.length = 0
    ts.options.expiredTokens = 1
    try {
      const r = await mergeWith({
        tags: `${reg.host}/dst/expired:1`,
        sources: sources(),
        username: USER,
        password: PASSWORD
      })
      expect(ts.requests.map((t) => [t.user, t.status])).toEqual([
        [USER, 200],
        [USER, 200]
      ])
      expect((await getManifest(admin, 'dst/expired', '1'))?.digest).toBe(r.index.digest)
    } finally {
      delete ts.options.expiredTokens
    }
  })

  it('pulls public repositories with an anonymous token', async () => {
    const plain = await startRegistry()
    try {
      ts.requests.length = 0
      const r = await mergeWith({ tags: `${plain.host}/copy:1`, sources: sources('public/app') })
      expect(ts.requests).toEqual([
        expect.objectContaining({
          grant: 'anonymous',
          scopes: ['repository:public/app:pull'],
          status: 200
        })
      ])
      expect((await getManifest(plain, 'copy', '1'))?.digest).toBe(r.index.digest)
    } finally {
      await plain.stop()
    }
  })

  it('refuses a wrong password with a clear 401 naming the registry and repository; nothing is pushed', async () => {
    const before = await snapshotStorage(reg.storageDir)
    const run = mergeWith({
      tags: `${reg.host}/dst/wrong:1`,
      sources: sources(),
      username: USER,
      password: 'not-the-password'
    })
    await expect(run).rejects.toThrow(
      new RegExp(
        `registry ${reg.host} refused access as ${USER} to (src|dst)/(app|wrong): token server 127\\.0\\.0\\.1:\\d+ answered HTTP 401`
      )
    )
    await expect(run).rejects.toMatchObject({ status: 401 })
    await expect(run).rejects.not.toThrow('not-the-password')
    expect(await snapshotStorage(reg.storageDir)).toEqual(before)
  })

  it('refuses anonymous access to a private repository, saying no credentials are configured', async () => {
    await expect(
      mergeWith({ tags: `${reg.host}/dst/anon:1`, sources: sources(), 'dry-run': 'true' })
    ).rejects.toThrow(
      new RegExp(`registry ${reg.host} refused .* anonymously: no credentials are configured`)
    )
  })

  describe('identity tokens from the docker config (node dist/index.js)', () => {
    const config = (): Promise<string> =>
      dockerConfig({
        auths: { [reg.host]: { auth: b64(`${USER}:`), identitytoken: IDENTITY_TOKEN } }
      })

    it('uses the OAuth2 refresh-token POST form', async () => {
      ts.requests.length = 0
      const from = ts.issued.length
      const run = await runAction(
        { tags: `${reg.host}/dst/idt:1`, sources: sources() },
        { DOCKER_CONFIG: await config(), RUNNER_DEBUG: '1' }
      )
      expect(run.stdout).not.toMatch(/::error::/)
      expect(run.code).toBe(0)
      expect(ts.requests).toEqual([
        expect.objectContaining({
          method: 'POST',
          grant: 'refresh_token',
          user: USER,
          scopes: ['repository:dst/idt:pull,push', 'repository:src/app:pull'],
          status: 200
        })
      ])
      expect((await getManifest(admin, 'dst/idt', '1'))?.digest).toBe(run.outputs.digest)
      expectNeverPrinted(run, [IDENTITY_TOKEN, ...issuedSince(ts, from)])
    })

    it('falls back to GET with Basic credentials when the POST is refused (GCR 404, ACR 400)', async () => {
      for (const status of [404, 400]) {
        ts.options.postStatus = status
        ts.requests.length = 0
        try {
          const run = await runAction(
            { tags: `${reg.host}/dst/idt-get:${status}`, sources: sources() },
            { DOCKER_CONFIG: await config() }
          )
          expect(run.code).toBe(0)
          expect(ts.requests.map((r) => [r.method, r.grant, r.user, r.status])).toEqual([
            ['POST', 'refresh_token', USER, status],
            ['GET', 'basic', USER, 200]
          ])
          expect(ts.requests[1].scopes).toEqual([
            `repository:dst/idt-get:pull,push`,
            'repository:src/app:pull'
          ])
        } finally {
          delete ts.options.postStatus
        }
      }
    })
  })

  describe('credential helpers (node dist/index.js, helper first on PATH)', () => {
    let bin: string

    /** Writes docker-credential-test: logs its stdin, answers with `username`/`secret`. */
    async function helper(username: string, secret: string): Promise<string> {
      bin = await tempDir('mm-helper-bin-')
      const file = join(bin, 'docker-credential-test')
      await writeFile(
        file,
        [
          '#!/bin/sh',
          `[ "$1" = get ] || exit 2`,
          `read -r server; echo "$server" >> "${bin}/calls.log"`,
          `printf '{"ServerURL":"%s","Username":"${username}","Secret":"${secret}"}' "$server"`,
          ''
        ].join('\n')
      )
      await chmod(file, 0o755)
      return `${bin}${delimiter}${process.env.PATH ?? ''}`
    }

    it('runs credHelpers once for the registry and never prints the secret', async () => {
      const PATH = await helper(USER, PASSWORD)
      const cfg = await dockerConfig({
        auths: { [reg.host]: {} },
        credHelpers: { [reg.host]: 'test' }
      })
      ts.requests.length = 0
      const from = ts.issued.length
      const run = await runAction(
        { tags: `${reg.host}/dst/helper:1`, sources: sources() },
        { DOCKER_CONFIG: cfg, PATH, RUNNER_DEBUG: '1' }
      )
      expect(run.stdout).not.toMatch(/::error::/)
      expect(run.code).toBe(0)
      expect(await readFile(join(bin, 'calls.log'), 'utf8')).toBe(`${reg.host}\n`)
      expect(ts.requests).toEqual([expect.objectContaining({ grant: 'basic', user: USER })])
      expect((await getManifest(admin, 'dst/helper', '1'))?.digest).toBe(run.outputs.digest)
      const tokens = issuedSince(ts, from)
      expect(tokens).toHaveLength(1)
      expectNeverPrinted(run, [PASSWORD, b64(`${USER}:${PASSWORD}`), ...tokens])
    })

    it('reads <token> answers of credsStore as identity tokens', async () => {
      const PATH = await helper('<token>', IDENTITY_TOKEN)
      ts.requests.length = 0
      const run = await runAction(
        { tags: `${reg.host}/dst/store:1`, sources: sources() },
        { DOCKER_CONFIG: await dockerConfig({ credsStore: 'test' }), PATH }
      )
      expect(run.code).toBe(0)
      expect(ts.requests).toEqual([
        expect.objectContaining({ method: 'POST', grant: 'refresh_token', user: USER })
      ])
      expectNeverPrinted(run, [IDENTITY_TOKEN])
    })

    it('fails with a 401 naming the registry and repository when the helper has a wrong password', async () => {
      const wrong = 'wrong-Password-From-Helper'
      const PATH = await helper(USER, wrong)
      const before = await snapshotStorage(reg.storageDir)
      const run = await runAction(
        { tags: `${reg.host}/dst/helper-wrong:1`, sources: sources() },
        { DOCKER_CONFIG: await dockerConfig({ credHelpers: { [reg.host]: 'test' } }), PATH }
      )
      expect(run.code).not.toBe(0)
      expect(run.stdout).toMatch(
        new RegExp(
          `::error::merge failed: .*registry ${reg.host} refused access as ${USER} to (src|dst)/`
        )
      )
      expect(run.stdout).toContain('HTTP 401')
      expectNeverPrinted(run, [wrong])
      expect(await snapshotStorage(reg.storageDir)).toEqual(before)
    })
  })
})

describe('Basic auth (htpasswd)', () => {
  let reg: TestRegistry
  let amd: Awaited<ReturnType<typeof pushImage>>
  let arm: Awaited<ReturnType<typeof pushImage>>

  beforeAll(async () => {
    reg = await startRegistry({ htpasswd: { user: USER, password: PASSWORD } })
    amd = await pushImage(reg, 'src/app', { arch: 'amd64', seed: 'basic' })
    arm = await pushImage(reg, 'src/app', { arch: 'arm64', variant: 'v8', seed: 'basic' })
  })
  afterAll(async () => {
    await reg?.stop()
  })

  const sources = (): string =>
    `${reg.host}/src/app@${amd.digest}\n${reg.host}/src/app@${arm.digest}`

  it('merges with the username and password inputs', async () => {
    const r = await mergeWith({
      tags: `${reg.host}/dst/app:1`,
      sources: sources(),
      username: USER,
      password: PASSWORD
    })
    expect((await getManifest(reg, 'dst/app', '1'))?.digest).toBe(r.index.digest)
  })

  it('refuses a wrong password with a clear 401 naming the registry and repository; nothing is pushed', async () => {
    const before = await snapshotStorage(reg.storageDir)
    const run = mergeWith({
      tags: `${reg.host}/dst/wrong:1`,
      sources: sources(),
      'registry-auth': `${reg.host}=${USER}:not-the-password`
    })
    await expect(run).rejects.toThrow(
      new RegExp(
        `registry ${reg.host} refused the credentials as ${USER} for (src|dst)/(app|wrong) \\(HTTP 401\\)`
      )
    )
    await expect(run).rejects.not.toThrow('not-the-password')
    expect(await snapshotStorage(reg.storageDir)).toEqual(before)
  })

  it('uses auths of the docker config and never prints the password (node dist/index.js)', async () => {
    const run = await runAction(
      { tags: `${reg.host}/dst/cfg:1`, sources: sources() },
      {
        DOCKER_CONFIG: await dockerConfig({
          auths: { [`https://${reg.host}`]: { auth: b64(`${USER}:${PASSWORD}`) } }
        }),
        RUNNER_DEBUG: '1'
      }
    )
    expect(run.stdout).not.toMatch(/::error::/)
    expect(run.code).toBe(0)
    expect((await getManifest(reg, 'dst/cfg', '1'))?.digest).toBe(run.outputs.digest)
    expectNeverPrinted(run, [PASSWORD, b64(`${USER}:${PASSWORD}`)])
  })

  it('lets the inputs win over the docker config', async () => {
    const before = await snapshotStorage(reg.storageDir)
    const run = await runAction(
      {
        tags: `${reg.host}/dst/precedence:1`,
        sources: sources(),
        username: USER,
        password: 'wrong-Input-Password'
      },
      {
        DOCKER_CONFIG: await dockerConfig({
          auths: { [reg.host]: { auth: b64(`${USER}:${PASSWORD}`) } }
        })
      }
    )
    expect(run.code).not.toBe(0)
    expect(run.stdout).toContain(`registry ${reg.host} refused the credentials as ${USER}`)
    expectNeverPrinted(run, ['wrong-Input-Password'])
    expect(await snapshotStorage(reg.storageDir)).toEqual(before)
  })
})

describe('TLS', () => {
  let reg: TestRegistry
  let img: Awaited<ReturnType<typeof pushImage>>

  beforeAll(async () => {
    reg = await startRegistry({ tls: true, htpasswd: { user: USER, password: PASSWORD } })
    img = await pushImage(reg, 'src/app', { arch: 'amd64', seed: 'tls', tag: 'amd64' })
  })
  afterAll(async () => {
    await reg?.stop()
  })

  it('switches a loopback registry from HTTP to HTTPS, for concurrent HEADs and GETs too', async () => {
    const inputs = parseInputs(
      (n) =>
        ({
          tags: `${reg.host}/src/app:amd64`,
          sources: `${reg.host}/src/app:amd64`,
          'insecure-registries': reg.host,
          username: USER,
          password: PASSWORD
        })[n] ?? ''
    )
    // A fresh client starts with plain HTTP; all sixteen requests go out before any answer comes
    // back, so each one meets the registry's "HTTP request to an HTTPS server" answer, most of
    // them after another request has switched the registry to HTTPS.
    const client = createClient(inputs, {
      credentials: new StaticCredentials({ explicit: inputs.credentials })
    })
    try {
      const repo = { registry: reg.host, repository: 'src/app' }
      const [heads, gets] = await Promise.all([
        Promise.all(Array.from({ length: 8 }, () => client.headManifest(repo, 'amd64'))),
        Promise.all(Array.from({ length: 8 }, () => client.getManifest(repo, 'amd64')))
      ])
      expect(heads.map((h) => h?.digest)).toEqual(Array(8).fill(img.digest))
      expect(gets.map((m) => m.digest)).toEqual(Array(8).fill(img.digest))
    } finally {
      await client.close()
    }
  })

  it('merges three sources over HTTPS, trusting the CA in NODE_EXTRA_CA_CERTS (node dist/index.js)', async () => {
    const more = await Promise.all(
      (['arm64', 's390x'] as const).map((arch) =>
        pushImage(reg, 'src/three', { arch, seed: 'tls3' })
      )
    )
    const sources = [img, ...more].map(
      (m) => `${reg.host}/src/${m === img ? 'app' : 'three'}@${m.digest}`
    )
    const run = await runAction(
      {
        tags: `${reg.host}/dst/three:1`,
        sources: sources.join('\n'),
        username: USER,
        password: PASSWORD
      },
      { NODE_EXTRA_CA_CERTS: reg.caFile! }
    )
    expect(run.stdout).not.toMatch(/::error::/)
    expect(run.code).toBe(0)
    const held = await getManifest(reg, 'dst/three', '1')
    expect(held?.digest).toBe(run.outputs.digest)
    expect(new Set(run.outputs.platforms.split(','))).toEqual(
      new Set(['linux/amd64', 'linux/arm64', 'linux/s390x'])
    )
  })

  it('merges over HTTPS with insecure-registries', async () => {
    const r = await mergeWith({
      tags: `${reg.host}/dst/app:1`,
      sources: `${reg.host}/src/app@${img.digest}`,
      'insecure-registries': reg.host,
      username: USER,
      password: PASSWORD
    })
    expect((await getManifest(reg, 'dst/app', '1'))?.digest).toBe(r.index.digest)
  })

  it('names the registry when its certificate is not trusted', async () => {
    await expect(
      mergeWith({
        tags: `${reg.host}/dst/untrusted:1`,
        sources: `${reg.host}/src/app@${img.digest}`,
        username: USER,
        password: PASSWORD
      })
    ).rejects.toThrow(
      new RegExp(
        `TLS error talking to registry ${reg.host} for .*: .*certificate.*Trust its CA with NODE_EXTRA_CA_CERTS, or list it in insecure-registries`
      )
    )
  })
})

describe('blob GETs redirected to another host', () => {
  let reg: TestRegistry
  let target: TestRegistry
  let proxy: TestProxy
  let storage: Server
  let storageUrl: string
  const storageHits: Array<{ path: string; headers: IncomingHttpHeaders }> = []
  const registryBlobGets: Array<{ authorization: boolean }> = []

  beforeAll(async () => {
    ;[reg, target] = await Promise.all([
      startRegistry({ htpasswd: { user: USER, password: PASSWORD } }),
      startRegistry()
    ])
    // Object storage on another port: records what it was sent, serves the blob from the registry.
    storage = createServer((req, res) => {
      storageHits.push({ path: req.url ?? '', headers: req.headers })
      const m = /^\/bucket\/(.+)\/(sha256:[0-9a-f]{64})\?/.exec(req.url ?? '')
      if (!m) return void res.writeHead(404).end()
      getBlob(reg as RegistryRef, m[1], m[2]).then(
        (blob) => res.writeHead(200, { 'content-length': blob.length }).end(blob),
        () => res.writeHead(500).end()
      )
    })
    await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r))
    storageUrl = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`
    proxy = await startProxy(reg.url)
    proxy.rules.push((req, res) => {
      const m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '')
      if (req.method !== 'GET' || !m) return false
      registryBlobGets.push({ authorization: req.headers.authorization !== undefined })
      // As the registry would: unauthorised requests are challenged, not redirected.
      if (!req.headers.authorization) return false
      res.writeHead(307, { location: `${storageUrl}/bucket/${m[1]}/${m[2]}?X-Signature=abc` })
      res.end()
      return true
    })
  })
  afterAll(async () => {
    await proxy?.stop()
    await new Promise((r) => storage?.close(r))
    await Promise.all([reg?.stop(), target?.stop()])
  })

  it('follows the redirect without the Authorization header', async () => {
    const amd = await pushImage(reg, 'src/app', { arch: 'amd64', seed: 'redir', layers: 2 })
    const arm = await pushImage(reg, 'src/app', { arch: 'arm64', variant: 'v8', seed: 'redir' })
    const r = await mergeWith({
      tags: `${target.host}/app:1`,
      sources: `${proxy.host}/src/app@${amd.digest}\n${proxy.host}/src/app@${arm.digest}`,
      'registry-auth': `${proxy.host}=${USER}:${PASSWORD}`
    })
    expect((await getManifest(target, 'app', '1'))?.digest).toBe(r.index.digest)
    for (const blob of [
      amd.configDigest,
      arm.configDigest,
      ...amd.layerDigests,
      ...arm.layerDigests
    ])
      expect(await blobExists(target, 'app', blob)).toBe(true)
    // Configs (read to learn the platforms) and layers (streamed to the target) all came from storage.
    const served = new Set(storageHits.map((h) => /sha256:[0-9a-f]+/.exec(h.path)?.[0]))
    expect(served).toEqual(
      new Set([amd.configDigest, arm.configDigest, ...amd.layerDigests, ...arm.layerDigests])
    )
    expect(storageHits.filter((h) => h.headers.authorization !== undefined)).toEqual([])
    // The registry itself did get the credentials.
    expect(registryBlobGets.filter((g) => g.authorization).length).toBeGreaterThanOrEqual(
      served.size
    )
  })
})
