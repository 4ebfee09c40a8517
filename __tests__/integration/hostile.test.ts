// Hostile and broken registries (issue 13): each case runs `node dist/index.js` as a runner does,
// against the real registry wherever it can store the hostile content (behind a proxy with a
// rule where it cannot serve it), or against a small fake server on 127.0.0.1 for what no real
// registry does (a token endpoint that never answers or streams 1.5 GiB). Every run is checked
// for secrets outside `::add-mask::` lines (stdout, stderr, GITHUB_OUTPUT, the summary, and what
// other origins received) and for workflow commands the action does not issue itself.
//
// Layout: `reg` is an htpasswd registry behind the rule proxy `px` (the hostile registry: its
// credentials, USER/SECRET, are given for px); `plain` is a second registry without auth behind
// the recording proxy `ppx`, a target on another origin that must never see SECRET.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createHash } from 'node:crypto'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { runAction, type ActionRun, type RunLimits } from '../helpers/action.js'
import {
  b64,
  challenge,
  drip,
  errorLines,
  expectFailureNaming,
  expectInert,
  expectNoCrash,
  expectSuccessOrFailureNaming,
  foreignCommands,
  leaks,
  linesOf,
  MiB,
  recordRequests,
  report,
  serveManifest,
  startFake,
  streamBytes,
  type FakeServer,
  type Received
} from '../helpers/hostile.js'
import {
  getBlob,
  getManifest,
  MT,
  pushAttestationWrapped,
  pushImage,
  pushIndex,
  sha256,
  type Descriptor,
  type Platform
} from '../helpers/oci.js'
import { startProxy, type TestProxy } from '../helpers/proxy.js'
import { startRegistry, type TestRegistry } from '../helpers/registry.js'

const USER = 'alice'
const SECRET = 'pw-H0stile-Regi5try-Secret'
const SECRETS = [SECRET, b64(`${USER}:${SECRET}`)]
/** A value that starts a workflow command on its second line. */
const INJECTION = '1\n::stop-commands::x'

/** Runs never outlive these, whatever the code under test does (a hang, a 4 GB walk). */
const GUARD: RunLimits = { killAfterMs: 60_000, killAboveRssBytes: 400 * MiB }
const RSS_LIMIT = 300 * MiB

let reg: TestRegistry
let plain: TestRegistry
let px: TestProxy
let ppx: TestProxy
/** Every request the other-origin registry received, headers included. */
let elsewhere: Received[]
const fakes: FakeServer[] = []
const temps: string[] = []

beforeAll(async () => {
  ;[reg, plain] = await Promise.all([
    startRegistry({ htpasswd: { user: USER, password: SECRET } }),
    startRegistry()
  ])
  ;[px, ppx] = await Promise.all([startProxy(reg.url), startProxy(plain.url)])
  elsewhere = recordRequests(ppx)
})
afterAll(async () => {
  await Promise.all([...fakes.map((f) => f.stop()), px?.stop(), ppx?.stop()])
  await Promise.all([reg?.stop(), plain?.stop()])
  await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })))
})

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  temps.push(dir)
  return dir
}

async function fake(...args: Parameters<typeof startFake>): Promise<FakeServer> {
  const f = await startFake(...args)
  fakes.push(f)
  return f
}

/** Credentials for tags on px (the inputs apply to the registries of the tags). */
const onPx = (): Record<string, string> => ({ username: USER, password: SECRET })
/** Credentials for px when the tags are elsewhere. */
const forPx = (): Record<string, string> => ({ 'registry-auth': `${px.host}=${USER}:${SECRET}` })

/** One run of the action, timed; RUNNER_DEBUG on, so that debug lines are checked too. */
async function timed(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  limits: RunLimits = GUARD
): Promise<{ run: ActionRun; ms: number }> {
  const t0 = Date.now()
  const run = await runAction(inputs, { RUNNER_DEBUG: '1', ...env }, { ...GUARD, ...limits })
  const ms = Date.now() - t0
  const error = errorLines(run)[0]
  report(expect.getState().currentTestName ?? 'run', ms, run, error ? error.slice(0, 240) : '')
  return { run, ms }
}

describe('the checks themselves', () => {
  const run = (stdout: string, more: Partial<ActionRun> = {}): ActionRun => ({
    code: 0,
    stdout,
    stderr: '',
    outputs: {},
    summary: '',
    peakRss: 0,
    ...more
  })

  it('flag every line that starts a workflow command the action does not issue', () => {
    const text = [
      '::group::Resolve sources',
      'platform linux/amd64:1',
      '::stop-commands::x',
      '  ::set-env name=A::b',
      'x\r::add-path::/tmp',
      'quoted ##[error]legacy',
      '::error::merge failed: 1%0A::stop-commands::x',
      '::endgroup::'
    ].join('\n')
    expect(foreignCommands(text)).toEqual([
      '::stop-commands::x',
      '  ::set-env name=A::b',
      '::add-path::/tmp',
      'quoted ##[error]legacy'
    ])
  })

  it('find a secret anywhere but in ::add-mask:: lines, and in requests to other origins', () => {
    const r = run(`::add-mask::${SECRET}\nok\nsaid ${SECRET}`, {
      stderr: `e ${SECRETS[1]}`,
      outputs: { digest: SECRET },
      summary: `<td>${SECRET}</td>`
    })
    const sent: Received = {
      host: 'h',
      method: 'GET',
      url: '/token',
      headers: { authorization: `Basic ${SECRETS[1]}` },
      body: ''
    }
    expect(leaks(r, SECRETS, [sent]).map((l) => l.where)).toEqual([
      'stdout',
      'stderr',
      'output digest',
      'summary',
      'request to h'
    ])
    expect(leaks(run(`::add-mask::${SECRET}\nok`), SECRETS)).toEqual([])
  })
})

describe('registry and image text is inert in the log, the outputs and the summary', () => {
  it.each(['os.version', 'variant'] as const)(
    'an image config whose %s carries a workflow command',
    async (field) => {
      const repo = `inj/config-${field.replace('.', '-')}`
      const img = await pushImage(
        reg,
        repo,
        field === 'os.version'
          ? { arch: 'amd64', osVersion: INJECTION, seed: repo }
          : { arch: 'arm64', variant: INJECTION, seed: repo }
      )
      const other = await pushImage(reg, repo, { arch: 's390x', seed: repo })
      const { run } = await timed({
        tags: `${px.host}/inj/out:config-${field.replace('.', '-')}`,
        sources: `${px.host}/${repo}@${img.digest}\n${px.host}/${repo}@${other.digest}`,
        ...onPx()
      })
      expectInert(run, SECRETS, elsewhere)
      expectSuccessOrFailureNaming(run, [repo])
    }
  )

  it.each(['os.version', 'variant'] as const)(
    "a source index entry whose platform's %s carries a workflow command",
    async (field) => {
      const repo = `inj/entry-${field.replace('.', '-')}`
      const img = await pushImage(reg, repo, { arch: 'arm64', seed: repo })
      const platform: Platform = { os: 'linux', architecture: 'arm64', [field]: INJECTION }
      const idx = await pushIndex(reg, repo, undefined, [{ ...img.descriptor, platform }])
      const { run } = await timed({
        tags: `${px.host}/inj/out:entry-${field.replace('.', '-')}`,
        sources: `${px.host}/${repo}@${idx.digest}`,
        ...onPx()
      })
      expectInert(run, SECRETS, elsewhere)
      expectSuccessOrFailureNaming(run, [repo])
    }
  )

  it('an attestation entry whose subject annotation carries a workflow command', async () => {
    const repo = 'inj/attestation'
    const w = await pushAttestationWrapped(reg, repo, { arch: 'amd64', seed: repo })
    const entries = (JSON.parse(w.indexBody) as { manifests: Descriptor[] }).manifests
    entries[1].annotations!['vnd.docker.reference.digest'] = `${w.imageDigest}\n::stop-commands::x`
    const idx = await pushIndex(reg, repo, undefined, entries)
    const { run } = await timed({
      tags: `${px.host}/inj/out:attestation`,
      sources: `${px.host}/${repo}@${idx.digest}`,
      ...onPx()
    })
    expectInert(run, SECRETS, elsewhere)
    expectSuccessOrFailureNaming(run, [repo])
  })

  it.each([
    ['text/plain', 'oops\n::stop-commands::x'],
    [
      'application/json',
      JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'oops\n::stop-commands::x' }] })
    ]
  ])(
    'a 503 whose %s body carries a workflow command, quoted in a retry line',
    async (type, body) => {
      const repo = `inj/retry-${type.replace('/', '-')}`
      const img = await pushImage(reg, repo, { arch: 'amd64', seed: repo })
      let hits = 0
      px.rules.push((req, res) => {
        if (req.method !== 'GET' || req.url !== `/v2/${repo}/manifests/${img.digest}`) return false
        if (hits++ > 0) return false
        req.resume()
        res.writeHead(503, { 'content-type': type }).end(body)
        return true
      })
      const { run } = await timed({
        tags: `${px.host}/inj/out:retry-${type.replace('/', '-')}`,
        sources: `${px.host}/${repo}@${img.digest}`,
        retries: '2',
        ...onPx()
      })
      expect(hits).toBeGreaterThanOrEqual(2)
      expectInert(run, SECRETS, elsewhere)
      expectSuccessOrFailureNaming(run, [repo])
    }
  )

  it('a platform value holding HTML never reaches the summary unescaped', async () => {
    const repo = 'inj/html'
    const img = await pushImage(reg, repo, { arch: 'arm64', seed: repo })
    const platform: Platform = {
      os: 'linux',
      architecture: 'arm64',
      variant: '<img src=x onerror=alert(1)>'
    }
    const idx = await pushIndex(reg, repo, undefined, [{ ...img.descriptor, platform }])
    const { run } = await timed({
      tags: `${px.host}/inj/out:html`,
      sources: `${px.host}/${repo}@${idx.digest}`,
      ...onPx()
    })
    expect(run.summary).not.toContain('<img')
    expectInert(run, SECRETS, elsewhere)
    expectSuccessOrFailureNaming(run, [repo])
  })
})

describe('exhaustion: the walk, the clock and every read are bounded', () => {
  // Each index holds 16 entries that all point at the index below; the bottom one holds one image
  // and its attestation, 8 times each. Levels 4: 6 manifests, 16^4 paths; levels 5: 16^5 paths.
  it.each([4, 5])(
    'an index fanning out to the same lower index, %i levels of 16 entries',
    async (levels) => {
      const repo = `fan/src${levels}`
      const w = await pushAttestationWrapped(reg, repo, { arch: 'amd64', seed: repo })
      const pair = (JSON.parse(w.indexBody) as { manifests: Descriptor[] }).manifests
      let level = await pushIndex(
        reg,
        repo,
        undefined,
        Array.from({ length: 16 }, (_, i) => pair[i % 2])
      )
      for (let depth = 2; depth <= levels; depth++) {
        const entry: Descriptor = { mediaType: MT.ociIndex, digest: level.digest, size: level.size }
        level = await pushIndex(reg, repo, undefined, Array(16).fill(entry))
      }
      px.reset()
      const { run, ms } = await timed(
        {
          tags: `${px.host}/fan/out:${levels}`,
          sources: `${px.host}/${repo}@${level.digest}`,
          ...onPx()
        },
        {},
        { killAfterMs: 32_000 }
      )
      console.log(`[hostile] fan-out index, ${levels} levels: ${px.requests.length} requests`)
      expect(run.killed).toBeUndefined()
      expect(ms).toBeLessThan(30_000)
      expect(run.peakRss).toBeLessThan(RSS_LIMIT)
      expect([0, 1]).toContain(run.code)
      if (run.code === 1) expect(errorLines(run).length).toBeGreaterThan(0)
      expectInert(run, SECRETS, elsewhere)
    }
  )

  it('timeout bounds a manifest served at one byte per second', async () => {
    const repo = 'slow/drip'
    const img = await pushImage(reg, repo, { arch: 'amd64', seed: repo })
    let drips = 0
    px.rules.push((req, res) => {
      if (req.method !== 'GET' || req.url !== `/v2/${repo}/manifests/${img.digest}`) return false
      drips++
      req.resume()
      const headers = { 'content-type': img.mediaType, 'docker-content-digest': img.digest }
      drip(res, headers, Buffer.from(img.body))
      return true
    })
    const { run, ms } = await timed(
      {
        tags: `${px.host}/slow/out:1`,
        sources: `${px.host}/${repo}@${img.digest}`,
        timeout: '10',
        retries: '1',
        ...onPx()
      },
      {},
      { killAfterMs: 20_000 }
    )
    expect(drips).toBeGreaterThanOrEqual(1)
    expect(run.killed).toBeUndefined()
    expect(ms).toBeLessThan(18_000)
    expect(run.code).toBe(1)
    expect(errorLines(run)).toEqual(expect.arrayContaining([expect.stringMatching(/timeout/i)]))
    expectInert(run, SECRETS, elsewhere)
  })

  it('timeout bounds a token endpoint that never answers', async () => {
    const hang = await fake((req, res, self) => {
      if ((req.url ?? '').startsWith('/token')) return // held until the server stops
      challenge(res, `${self.url}/token`, req.url ?? '')
    })
    const { run, ms } = await timed(
      {
        tags: `${px.host}/slow/out:token`,
        sources: `${hang.host}/hostile/app@sha256:${'0'.repeat(64)}`,
        timeout: '10',
        retries: '1',
        ...onPx()
      },
      {},
      { killAfterMs: 21_000 }
    )
    expect(hang.requests.filter((r) => r.url.startsWith('/token')).length).toBeGreaterThan(0)
    expect(run.killed).toBeUndefined()
    expect(ms).toBeLessThan(18_000)
    expect(run.code).toBe(1)
    expect(errorLines(run)).toEqual(expect.arrayContaining([expect.stringMatching(/timeout/i)]))
    expectInert(run, SECRETS, [...elsewhere, ...hang.requests])
  })

  it.each([
    ['with', true],
    ['without', false]
  ])(
    'a token endpoint streaming 1.5 GiB (%s Content-Length) fails at 1 MiB',
    async (_, withLength) => {
      const total = 1536 * MiB
      let sent = 0
      const huge = await fake((req, res, self) => {
        if (!(req.url ?? '').startsWith('/token')) {
          challenge(res, `${self.url}/token`, req.url ?? '')
          return
        }
        sent++
        res.writeHead(200, {
          'content-type': 'application/json',
          ...(withLength ? { 'content-length': String(total) } : {})
        })
        streamBytes(res, total, '{"token":"')
      })
      const { run, ms } = await timed(
        {
          tags: `${px.host}/huge/out:token`,
          sources: `${huge.host}/hostile/app@sha256:${'0'.repeat(64)}`,
          retries: '1',
          ...onPx()
        },
        {},
        { killAfterMs: 32_000 }
      )
      expect(sent).toBeGreaterThan(0)
      expect(run.killed).toBeUndefined()
      expect(ms).toBeLessThan(30_000)
      expect(run.peakRss).toBeLessThan(RSS_LIMIT)
      expect(run.code).toBe(1)
      expect(errorLines(run)).toEqual(expect.arrayContaining([expect.stringContaining('1 MiB')]))
      expectInert(run, SECRETS, [...elsewhere, ...huge.requests])
    }
  )

  it('a 500 with a 400 MiB body, on every attempt, is never buffered whole', async () => {
    const repo = 'huge/err'
    const img = await pushImage(reg, repo, { arch: 'amd64', seed: repo })
    let hits = 0
    px.rules.push((req, res) => {
      if (req.method !== 'GET' || req.url !== `/v2/${repo}/manifests/${img.digest}`) return false
      hits++
      req.resume()
      const total = 400 * MiB
      res.writeHead(500, { 'content-type': 'application/json', 'content-length': String(total) })
      streamBytes(res, total, '{"errors":[{"code":"UNKNOWN","message":"')
      return true
    })
    const { run, ms } = await timed({
      tags: `${px.host}/huge/out:500`,
      sources: `${px.host}/${repo}@${img.digest}`,
      retries: '1',
      ...onPx()
    })
    console.log(`[hostile] 500 with a 400 MiB body: ${hits} attempts`)
    expect(hits).toBeGreaterThan(0)
    expect(run.killed).toBeUndefined()
    expect(ms).toBeLessThan(30_000)
    expect(run.peakRss).toBeLessThan(RSS_LIMIT)
    expect(run.code).toBe(1)
    expect(errorLines(run).length).toBeGreaterThan(0)
    expectInert(run, SECRETS, elsewhere)
  })
})

describe('entry digests from a registry are validated', () => {
  it('refuses sha256:../../other/manifests/latest and never requests /other/', async () => {
    const repo = 'dig/trav'
    const img = await pushImage(reg, repo, { arch: 'arm64', seed: repo })
    // Something to find, were the digest followed as a path.
    await pushImage(reg, 'other', { arch: 'amd64', seed: repo, tag: 'latest' })
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        img.descriptor,
        {
          mediaType: MT.ociManifest,
          digest: 'sha256:../../other/manifests/latest',
          size: img.size,
          platform: { os: 'linux', architecture: 'amd64' }
        }
      ]
    })
    px.rules.push(serveManifest(repo, 'v1', body, MT.ociIndex, sha256(body)))
    px.reset()
    const { run } = await timed({
      tags: `${px.host}/dig/out:trav`,
      sources: `${px.host}/${repo}:v1`,
      ...onPx()
    })
    const decode = (p: string): string => {
      try {
        return decodeURIComponent(p)
      } catch {
        return p
      }
    }
    expect(
      px.requests.filter((r) => r.path.includes('/other/') || decode(r.path).includes('/other/'))
    ).toEqual([])
    expectFailureNaming(run, [repo])
    expectInert(run, SECRETS, elsewhere)
  })

  it.each(['md5', 'sha1'])(
    'refuses %s digests, even when the registry serves them',
    async (alg) => {
      const repo = `dig/${alg}`
      const img = await pushImage(reg, repo, { arch: 'amd64', seed: repo })
      const other = await pushImage(reg, repo, { arch: 'arm64', seed: repo })
      const weak = `${alg}:${createHash(alg).update(img.body).digest('hex')}`
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.ociIndex,
        manifests: [{ ...img.descriptor, digest: weak }, other.descriptor]
      })
      px.rules.push(serveManifest(repo, 'v1', body, MT.ociIndex, sha256(body)))
      px.rules.push(serveManifest(repo, weak, img.body, img.mediaType, weak))
      // A dry run: nothing is written, so only the digest check can fail it.
      const { run } = await timed({
        tags: `${px.host}/dig/out:${alg}`,
        sources: `${px.host}/${repo}:v1`,
        'dry-run': 'true',
        ...onPx()
      })
      expect(run.killed).toBeUndefined()
      expect(run.code).toBe(1)
      expect(errorLines(run).length).toBeGreaterThan(0)
      expectInert(run, SECRETS, elsewhere)
    }
  )
})

describe('sizes: blobs and entries whose lengths disagree with their descriptors', () => {
  it.each([
    ['longer', 'with'],
    ['longer', 'without'],
    ['shorter', 'with'],
    ['shorter', 'without']
  ])(
    'a blob %s than its descriptor, %s Content-Length, fails cleanly naming the blob',
    async (how, cl) => {
      const repo = `size/blob-${how}-${cl}`
      const img = await pushImage(reg, repo, { arch: 'amd64', seed: repo })
      const layer = img.layerDigests[0]
      const real = await getBlob(reg, repo, layer)
      const bytes =
        how === 'longer'
          ? Buffer.concat([real, Buffer.alloc(100, 0x78)])
          : real.subarray(0, real.length >> 1)
      let hits = 0
      px.rules.push((req, res) => {
        if (req.method !== 'GET' || req.url !== `/v2/${repo}/blobs/${layer}`) return false
        hits++
        req.resume()
        const headers: Record<string, string> = {
          'content-type': 'application/octet-stream',
          'docker-content-digest': layer
        }
        if (cl === 'with') headers['content-length'] = String(bytes.length)
        res.writeHead(200, headers)
        res.end(bytes)
        return true
      })
      const { run } = await timed({
        tags: `${ppx.host}/size/out-${how}-${cl}:1`,
        sources: `${px.host}/${repo}@${img.digest}`,
        retries: '1',
        ...forPx()
      })
      expect(hits).toBeGreaterThan(0)
      expectNoCrash(run)
      expectFailureNaming(run, [layer])
      expectInert(run, SECRETS, elsewhere)
    }
  )

  it.each([7, -7])(
    'an entry whose size is off by %i from its bytes is pushed with the size of the bytes',
    async (delta) => {
      const repo = `size/entry${delta}`
      const img = await pushImage(reg, repo, { arch: 'amd64', seed: repo })
      const idx = await pushIndex(reg, repo, undefined, [
        { ...img.descriptor, size: img.size + delta }
      ])
      const { run } = await timed({
        tags: `${ppx.host}/size/out-entry${delta}:1`,
        sources: `${px.host}/${repo}@${idx.digest}`,
        ...forPx()
      })
      expect(errorLines(run)).toEqual([])
      expect(run.code).toBe(0)
      const pushed = await getManifest(plain, `size/out-entry${delta}`, '1')
      expect(pushed?.digest).toBe(run.outputs.digest)
      const entries = (JSON.parse(pushed!.body) as { manifests: Descriptor[] }).manifests
      expect(entries.map((e) => [e.digest, e.size])).toEqual([[img.digest, img.size]])
      expectInert(run, SECRETS, elsewhere)
    }
  )
})

describe('credentials', () => {
  it('finds the credentials of LOCALHOST:<port> under localhost:<port> in the docker config', async () => {
    const port = reg.host.split(':')[1]
    const upper = `LOCALHOST:${port}`
    const repo = 'case/src'
    const [amd, arm] = await Promise.all([
      pushImage(reg, repo, { arch: 'amd64', seed: repo }),
      pushImage(reg, repo, { arch: 'arm64', seed: repo })
    ])
    const config = await tempDir('mm-hostile-config-')
    await writeFile(
      join(config, 'config.json'),
      JSON.stringify({ auths: { [`localhost:${port}`]: { auth: b64(`${USER}:${SECRET}`) } } })
    )
    const { run } = await timed(
      {
        tags: `${upper}/case/out:1`,
        sources: `${upper}/${repo}@${amd.digest}\n${upper}/${repo}@${arm.digest}`
      },
      { DOCKER_CONFIG: config }
    )
    expect(errorLines(run)).toEqual([])
    expect(run.code).toBe(0)
    expect((await getManifest(reg, 'case/out', '1'))?.digest).toBe(run.outputs.digest)
    expectInert(run, SECRETS, elsewhere)
  })

  it('never shows what a failing credential helper printed, and names the helper', async () => {
    const printed = 'evil-Helper-S3cret-Value-42'
    const bin = await tempDir('mm-hostile-helper-')
    await writeFile(
      join(bin, 'docker-credential-evil'),
      [
        '#!/bin/sh',
        'cat >/dev/null',
        `echo '{"Username":"${USER}","Secret":"${printed}"}'`,
        `echo 'helper failed, secret: ${printed}' >&2`,
        'exit 1',
        ''
      ].join('\n')
    )
    await chmod(join(bin, 'docker-credential-evil'), 0o755)
    const config = await tempDir('mm-hostile-config-')
    await writeFile(
      join(config, 'config.json'),
      JSON.stringify({ credHelpers: { [reg.host]: 'evil' } })
    )
    const img = await pushImage(reg, 'helper/src', { arch: 'amd64', seed: 'helper' })
    const { run } = await timed(
      { tags: `${reg.host}/helper/out:1`, sources: `${reg.host}/helper/src@${img.digest}` },
      { DOCKER_CONFIG: config, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}` }
    )
    // Nowhere at all: not even in an ::add-mask:: line.
    for (const text of [run.stdout, run.stderr, run.summary, JSON.stringify(run.outputs)])
      expect(linesOf(text).filter((l) => l.includes(printed))).toEqual([])
    expectFailureNaming(run, ['evil'])
    expectInert(run, [printed, ...SECRETS], elsewhere)
  })
})
