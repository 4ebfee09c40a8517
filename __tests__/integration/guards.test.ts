// Matrix guard rails: require-platforms, append, platform-digests, metadata-action inputs,
// on-conflict, against the real registry (a proxy only refuses tag PUTs with 403).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { runAction } from '../helpers/action.js'
import { mergeWith } from '../helpers/merge.js'
import { getManifest, pushAttestationWrapped, pushImage } from '../helpers/oci.js'
import { refuse, startProxy, type TestProxy } from '../helpers/proxy.js'
import { startRegistry, snapshotStorage, type TestRegistry } from '../helpers/registry.js'

let reg: TestRegistry
let proxy: TestProxy

beforeAll(async () => {
  reg = await startRegistry()
  proxy = await startProxy(reg.url)
})
afterAll(async () => {
  await proxy?.stop()
  await reg?.stop()
})

const entries = async (
  repo: string,
  ref: string
): Promise<Array<{ digest: string; platform: Record<string, string> }>> =>
  (
    JSON.parse((await getManifest(reg, repo, ref))!.body) as {
      manifests: Array<{ digest: string; platform: Record<string, string> }>
    }
  ).manifests

describe('require-platforms', () => {
  it('fails before any write when a platform is missing, naming it and the sources', async () => {
    const old = await pushImage(reg, 'req/app', { arch: 'amd64', seed: 'old', tag: '1' })
    const amd = await pushImage(reg, 'req/app', { arch: 'amd64', seed: 'r' })
    const before = await snapshotStorage(reg.storageDir)
    await expect(
      mergeWith({
        tags: `${reg.host}/req/app:1`,
        sources: amd.digest,
        'require-platforms': 'linux/amd64,linux/arm64'
      })
    ).rejects.toThrow(
      new RegExp(
        `input require-platforms: missing linux/arm64\\. The merge would hold linux/amd64, from sources: ${amd.digest}`
      )
    )
    expect(await snapshotStorage(reg.storageDir)).toEqual(before)
    expect((await getManifest(reg, 'req/app', '1'))?.digest).toBe(old.digest)
  })

  it('refuses unlisted platforms unless allow-extra-platforms is set', async () => {
    const amd = await pushImage(reg, 'req/x', { arch: 'amd64', seed: 'x' })
    const arm = await pushImage(reg, 'req/x', { arch: 'arm', variant: 'v7', seed: 'x' })
    const inputs = {
      tags: `${reg.host}/req/x:1`,
      sources: `${amd.digest},${arm.digest}`,
      'require-platforms': 'linux/amd64'
    }
    await expect(mergeWith(inputs)).rejects.toThrow(
      /not listed: linux\/arm\/v7 \(set allow-extra-platforms: true/
    )
    const r = await mergeWith({ ...inputs, 'allow-extra-platforms': 'true' })
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm/v7'])
    // arm matches arm/v7 and arm64 matches arm64/v8, as containerd normalises them.
    const ok = await mergeWith({ ...inputs, 'require-platforms': 'linux/arm, linux/amd64' })
    expect(ok.tags[0].outcome).toBe('unchanged')
  })
})

describe('append', () => {
  it('replaces one platform of an existing multi-arch tag and keeps the others with their attestations', async () => {
    const amd = await pushAttestationWrapped(reg, 'app/append', { arch: 'amd64', seed: 'v1' })
    const arm1 = await pushAttestationWrapped(reg, 'app/append', { arch: 'arm64', seed: 'v1' })
    await mergeWith({
      tags: `${reg.host}/app/append:latest`,
      sources: `${amd.indexDigest}\n${arm1.indexDigest}`
    })
    const arm2 = await pushAttestationWrapped(reg, 'app/append', { arch: 'arm64', seed: 'v2' })
    const ppc = await pushImage(reg, 'app/append', { arch: 'ppc64le', seed: 'v2' })

    const r = await mergeWith({
      tags: `${reg.host}/app/append:latest`,
      sources: `${arm2.indexDigest}\n${ppc.digest}`,
      append: 'true'
    })
    expect((await entries('app/append', 'latest')).map((m) => m.digest)).toEqual([
      amd.imageDigest,
      amd.attestationDigest,
      arm2.imageDigest,
      arm2.attestationDigest,
      ppc.digest
    ])
    expect(r.log.join('\n')).toMatch(new RegExp(`replace linux/arm64 ${arm1.imageDigest}`))
    expect(r.log.join('\n')).toMatch(new RegExp(`drop attestation ${arm1.attestationDigest}`))
  })

  it('starts from the sources alone when the tag does not exist, and turns a plain manifest into one entry', async () => {
    const amd = await pushImage(reg, 'app/append2', { arch: 'amd64', seed: 'p', tag: 'single' })
    const arm = await pushImage(reg, 'app/append2', { arch: 'arm64', seed: 'p' })
    await mergeWith({ tags: `${reg.host}/app/append2:single`, sources: arm.digest, append: 'true' })
    expect((await entries('app/append2', 'single')).map((m) => m.digest)).toEqual([
      amd.digest,
      arm.digest
    ])
    const fresh = await mergeWith({
      tags: `${reg.host}/app/append2:new`,
      sources: arm.digest,
      append: 'true'
    })
    expect(fresh.log.join('\n')).toMatch(/does not exist yet/)
  })
})

describe('outputs and metadata-action', () => {
  it('takes tags from metadata-action json and its annotations lines; platform-digests match the pushed index', async () => {
    const amd = await pushAttestationWrapped(reg, 'meta/app', { arch: 'amd64', seed: 'm' })
    const arm = await pushImage(reg, 'meta/app', { arch: 'arm64', variant: 'v8', seed: 'm' })
    const json = JSON.stringify({
      tags: [`${reg.host}/meta/app:main`, `${reg.host}/meta/app:sha-860c190`],
      labels: {
        'org.opencontainers.image.title': 'app',
        'org.opencontainers.image.revision': '860c1904a1ce19322e91ac35af1ab07466440c37'
      },
      annotations: ['manifest:org.opencontainers.image.title=app']
    })
    const annotations = [
      'manifest:org.opencontainers.image.title=app',
      'index:org.opencontainers.image.title=app',
      'index:org.opencontainers.image.revision=860c1904a1ce19322e91ac35af1ab07466440c37',
      'manifest-descriptor:org.opencontainers.image.title=app'
    ].join('\n')
    const run = await runAction(
      {
        sources: `${amd.indexDigest}\n${arm.digest}`,
        annotations,
        'source-repository': `${reg.host}/meta/app`
      },
      { DOCKER_METADATA_OUTPUT_JSON: json }
    )
    expect(run.stdout).not.toMatch(/::error::/)
    expect(run.outputs.tags).toBe(`${reg.host}/meta/app:main\n${reg.host}/meta/app:sha-860c190`)
    const m = await getManifest(reg, 'meta/app', 'sha-860c190')
    expect(m?.digest).toBe(run.outputs.digest)
    const idx = JSON.parse(m!.body) as {
      annotations: Record<string, string>
      manifests: Array<{
        digest: string
        platform: { architecture: string; os: string; variant?: string }
        annotations?: Record<string, string>
      }>
    }
    expect(idx.annotations).toEqual({
      'org.opencontainers.image.revision': '860c1904a1ce19322e91ac35af1ab07466440c37',
      'org.opencontainers.image.title': 'app'
    })
    expect(idx.manifests[0].annotations).toEqual({ 'org.opencontainers.image.title': 'app' })
    expect(run.stdout).toMatch(
      /annotation "manifest:org.opencontainers.image.title=app" is not for an index or its descriptors: ignored/
    )
    // platform-digests: each image entry of the index the registry serves, by platform.
    const fromIndex: Record<string, string> = {}
    for (const e of idx.manifests) {
      if (e.platform.os === 'unknown') continue
      fromIndex[
        [e.platform.os, e.platform.architecture, e.platform.variant].filter(Boolean).join('/')
      ] = e.digest
    }
    expect(JSON.parse(run.outputs['platform-digests'])).toEqual(fromIndex)
  })

  it('adds source and revision annotations from the workflow context, the same on every rerun', async () => {
    const x = await pushImage(reg, 'meta/gh', { arch: 'amd64', seed: 'g' })
    const env = {
      GITHUB_REPOSITORY: 'acme/app',
      GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
      GITHUB_SERVER_URL: 'https://github.com'
    }
    const inputs = {
      tags: `${reg.host}/meta/gh:1`,
      sources: x.digest,
      'github-annotations': 'true'
    }
    const first = await runAction(inputs, env)
    const second = await runAction(inputs, env)
    expect(first.code).toBe(0)
    expect(second.outputs.digest).toBe(first.outputs.digest)
    expect(JSON.parse(first.outputs.manifest).annotations).toEqual({
      'org.opencontainers.image.revision': '0123456789abcdef0123456789abcdef01234567',
      'org.opencontainers.image.source': 'https://github.com/acme/app'
    })
    expect(second.stdout).toMatch(/already points at/)
  })
})

describe('on-conflict', () => {
  it('fails by default, naming the tag and the missing permission; skip and warn leave the tag', async () => {
    const old = await pushImage(reg, 'conf/app', { arch: 'amd64', seed: 'old', tag: 'v1' })
    const x = await pushImage(reg, 'conf/app', { arch: 'amd64', seed: 'new' })
    const y = await pushImage(reg, 'conf/app', { arch: 'arm64', seed: 'new' })
    proxy.rules.push(refuse('PUT', /\/manifests\/v1$/, 403, 'DENIED', 'overwrite not permitted'))
    try {
      const tags = `${proxy.host}/conf/app:v1\n${proxy.host}/conf/app:v2`
      const sources = `${x.digest}\n${y.digest}`
      await expect(mergeWith({ tags, sources })).rejects.toThrow(
        new RegExp(
          `tag ${proxy.host}/conf/app:v1 holds ${old.digest} and the registry refused to overwrite it \\(HTTP 403 DENIED\\): the credentials lack overwrite \\(delete\\) permission`
        )
      )
      const skipped = await mergeWith({ tags, sources, 'on-conflict': 'skip' })
      expect(skipped.tags.map((t) => t.outcome)).toEqual(['skipped', 'pushed'])
      const warned = await runAction({ tags, sources, 'on-conflict': 'warn' })
      expect(warned.code).toBe(0)
      expect(warned.stdout).toMatch(/::warning::tag .*conf\/app:v1 holds/)
      expect(warned.outputs.tags).toBe(`${proxy.host}/conf/app:v2`)
    } finally {
      proxy.rules.length = 0
    }
    expect((await getManifest(reg, 'conf/app', 'v1'))?.digest).toBe(old.digest)
  })
})

describe('rate-limit thrift', () => {
  it('uses HEAD for the tags and logs the ratelimit-remaining figure the registry sends', async () => {
    const x = await pushImage(reg, 'rl/app', { arch: 'amd64', seed: 'rl' })
    // Docker Hub sends these on manifest responses; the real registry does not, so the proxy adds them.
    proxy.rules.push((_req, res) => {
      const writeHead = res.writeHead.bind(res) as (...a: unknown[]) => typeof res
      res.writeHead = ((status: number, headers?: Record<string, string>) =>
        writeHead(status, {
          ...headers,
          'ratelimit-limit': '100;w=21600',
          'ratelimit-remaining': '76;w=21600'
        })) as typeof res.writeHead
      return false
    })
    proxy.reset()
    try {
      const run = await runAction({
        tags: `${proxy.host}/rl/app:1`,
        sources: `${proxy.host}/rl/app@${x.digest}`
      })
      expect(run.code).toBe(0)
      expect(run.stdout).toContain(`rate limit remaining at ${proxy.host}: 76;w=21600`)
    } finally {
      proxy.rules.length = 0
    }
    expect(proxy.count('HEAD', /\/manifests\/1$/)).toBe(1)
    expect(proxy.count('GET', /\/manifests\/1$/)).toBe(0)
  })
})

describe('on-conflict with credentials that cannot push at all', () => {
  it('fails even with on-conflict: skip when the registry refuses every manifest PUT', async () => {
    const old = await pushImage(reg, 'ro/app', { arch: 'amd64', seed: 'old', tag: 'v1' })
    const x = await pushImage(reg, 'ro/app', { arch: 'arm64', seed: 'new' })
    proxy.rules.push(
      refuse(
        'PUT',
        /^\/v2\/ro\/app\/manifests\//,
        403,
        'DENIED',
        'requested access to the resource is denied'
      )
    )
    try {
      await expect(
        mergeWith({
          tags: `${proxy.host}/ro/app:v1`,
          sources: x.digest,
          'source-repository': `${proxy.host}/ro/app`,
          'on-conflict': 'skip'
        })
      ).rejects.toThrow(
        /PUT manifest sha256:.* in 127\.0\.0\.1:\d+\/ro\/app failed: HTTP 403 \(DENIED/
      )
    } finally {
      proxy.rules.length = 0
    }
    expect((await getManifest(reg, 'ro/app', 'v1'))?.digest).toBe(old.digest)
  })
})
