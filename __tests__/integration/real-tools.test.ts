// Sources built to the exact structure of what real tools push (regctl, BuildKit 0.32, oras,
// cosign v3, Docker Hub's Windows lists, older layouts), merged against the real registry.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { request as httpRequest } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mergeWith } from '../helpers/merge.js'
import {
  getManifest,
  MT,
  pushBlob,
  pushImage,
  pushIndex,
  pushManifest,
  sha256,
  type Descriptor,
  type PushedImage
} from '../helpers/oci.js'
import { startProxy, type TestProxy } from '../helpers/proxy.js'
import { startRegistry, type TestRegistry } from '../helpers/registry.js'
import { skopeoCopyAll, skopeoInspectRaw } from '../helpers/tools.js'

const EMPTY = 'application/vnd.oci.empty.v1+json'
// cosign v3 attaches a Sigstore bundle as an OCI 1.1 referrer with this artifactType
// (sigstore/cosign v3 release notes; sigstore/protobuf-specs bundle media types).
const SIGSTORE_BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json'

interface Entry extends Descriptor {
  artifactType?: string
}

let reg: TestRegistry
let amd: PushedImage
let arm: PushedImage

async function index(
  repo: string,
  ref: string
): Promise<{
  digest: string
  mediaType: string
  manifests: Entry[]
  annotations?: Record<string, string>
}> {
  const m = await getManifest(reg, repo, ref)
  if (!m) throw new Error(`${repo}:${ref} is missing`)
  const doc = JSON.parse(m.body) as { manifests: Entry[]; annotations?: Record<string, string> }
  return { digest: m.digest, mediaType: m.mediaType, ...doc }
}

/** An OCI manifest that is not an image: an empty config and one layer, optionally with a subject. */
async function pushArtifact(
  repo: string,
  opts: {
    artifactType?: string
    layerType: string
    content: string
    subject?: PushedImage
    config?: string
  }
): Promise<{ digest: string; size: number; body: string }> {
  const cfg = await pushBlob(reg, repo, opts.config ?? '{}')
  const layer = await pushBlob(reg, repo, opts.content)
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    ...(opts.artifactType ? { artifactType: opts.artifactType } : {}),
    config: { mediaType: opts.config ? MT.ociConfig : EMPTY, digest: cfg.digest, size: cfg.size },
    layers: [{ mediaType: opts.layerType, digest: layer.digest, size: layer.size }]
  }
  if (opts.subject)
    doc.subject = {
      mediaType: opts.subject.mediaType,
      digest: opts.subject.digest,
      size: opts.subject.size
    }
  const body = JSON.stringify(doc)
  const digest = await pushManifest(reg, repo, sha256(body), body, MT.ociManifest)
  return { digest, size: Buffer.byteLength(body), body }
}

const unknown = { architecture: 'unknown', os: 'unknown' }

beforeAll(async () => {
  reg = await startRegistry()
  amd = await pushImage(reg, 'tools/src', { arch: 'amd64', seed: 'rt' })
  arm = await pushImage(reg, 'tools/src', { arch: 'arm64', seed: 'rt' })
})

afterAll(async () => {
  await reg?.stop()
})

describe('regctl builder entries and other unplatformed companions', () => {
  let source: string
  let byAnnotation: { digest: string; size: number }
  let bySubject: { digest: string; size: number }
  let orphan: { digest: string; size: number }

  beforeAll(async () => {
    // regctl writes entries of type "builder" (not attestations) with platform unknown/unknown;
    // one names its image by annotation, another only by an OCI subject.
    byAnnotation = await pushArtifact('tools/src', {
      layerType: 'application/vnd.regclient.builder+json',
      content: 'builder-a'
    })
    bySubject = await pushArtifact('tools/src', {
      layerType: 'application/vnd.regclient.builder+json',
      content: 'builder-b',
      subject: amd
    })
    // An oras artifact with a config that is not JSON and no subject: it belongs to no image.
    orphan = await pushArtifact('tools/src', {
      artifactType: 'application/vnd.example.thing',
      layerType: 'text/plain',
      content: 'orphan',
      config: 'not json'
    })
    const idx = await pushIndex(reg, 'tools/src', undefined, [
      amd.descriptor,
      {
        mediaType: MT.ociManifest,
        ...byAnnotation,
        platform: unknown,
        annotations: {
          'vnd.docker.reference.type': 'builder',
          'vnd.docker.reference.digest': amd.digest
        }
      },
      {
        mediaType: MT.ociManifest,
        ...bySubject,
        platform: unknown,
        annotations: { 'vnd.docker.reference.type': 'builder' }
      },
      { mediaType: MT.ociManifest, digest: orphan.digest, size: orphan.size, platform: unknown }
    ])
    source = `${reg.host}/tools/src@${idx.digest}`
  })

  it('keeps builder entries right after their image, drops what belongs to no image with a line naming it', async () => {
    const r = await mergeWith({
      tags: `${reg.host}/tools/out:builder`,
      sources: `${source}\n${reg.host}/tools/src@${arm.digest}`
    })
    const out = await index('tools/out', 'builder')
    expect(out.manifests.map((m) => m.digest)).toEqual([
      amd.digest,
      byAnnotation.digest,
      bySubject.digest,
      arm.digest
    ])
    expect(out.manifests[1].annotations?.['vnd.docker.reference.type']).toBe('builder')
    expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64'])
    expect(r.log.join('\n')).toContain(
      `drop application/vnd.example.thing manifest ${orphan.digest}: it names no image it belongs to`
    )
    // skopeo reads the index, unknown entries and all.
    const raw = JSON.parse(await skopeoInspectRaw(`${reg.host}/tools/out:builder`)) as {
      manifests: Entry[]
    }
    expect(raw.manifests).toHaveLength(4)
  })

  it('drops them with their image, and with attestations: strip, saying so', async () => {
    const r = await mergeWith({
      tags: `${reg.host}/tools/out:builder-strip`,
      sources: `${source}\n${reg.host}/tools/src@${arm.digest}`,
      attestations: 'strip'
    })
    expect((await index('tools/out', 'builder-strip')).manifests.map((m) => m.digest)).toEqual([
      amd.digest,
      arm.digest
    ])
    expect(r.log.join('\n')).toContain(
      `strip builder manifest ${byAnnotation.digest} of ${amd.digest}`
    )
    const f = await mergeWith({
      tags: `${reg.host}/tools/out:builder-arm`,
      sources: `${source}\n${reg.host}/tools/src@${arm.digest}`,
      platforms: 'linux/arm64'
    })
    expect((await index('tools/out', 'builder-arm')).manifests.map((m) => m.digest)).toEqual([
      arm.digest
    ])
    expect(f.log.join('\n')).toContain(
      `drop builder manifest ${bySubject.digest}: its image ${amd.digest} is not in the index`
    )
  })
})

describe('an empty index as a source', () => {
  it('is an error naming the source, and nothing is pushed', async () => {
    const empty = await pushIndex(reg, 'tools/src', undefined, [])
    const input = `${reg.host}/tools/src@${empty.digest}`
    await expect(
      mergeWith({
        tags: `${reg.host}/tools/out:empty`,
        sources: `${input}\n${reg.host}/tools/src@${arm.digest}`
      })
    ).rejects.toThrow(`source ${input}: it holds no image to merge, no entries (an empty index)`)
    expect(await getManifest(reg, 'tools/out', 'empty')).toBeUndefined()
  })
})

describe("a source index whose descriptor media type is not the manifest's", () => {
  let input: string
  beforeAll(async () => {
    // Older layouts (Bazel rules, hand-made indexes) describe an OCI manifest as a Docker one.
    const idx = await pushIndex(reg, 'tools/src', undefined, [
      { ...amd.descriptor, mediaType: MT.dockerManifest },
      arm.descriptor
    ])
    input = `${reg.host}/tools/src@${idx.digest}`
  })

  it.each([
    ['the same repository', 'tools/src'],
    ['another repository', 'tools/other']
  ])(
    'is published with the type of the manifest itself, into %s, and skopeo copies it',
    async (_, repo) => {
      const tag = `${reg.host}/${repo}:mismatch`
      const r = await mergeWith({ tags: tag, sources: input })
      const out = await index(repo, 'mismatch')
      expect(out.manifests.map((m) => m.mediaType)).toEqual([MT.ociManifest, MT.ociManifest])
      expect(r.log.join('\n')).toContain(`its index says ${MT.dockerManifest}`)
      const dir = await mkdtemp(join(tmpdir(), 'mam-mismatch-'))
      try {
        await skopeoCopyAll(tag, dir, { preserveDigests: true })
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    }
  )
})

describe("Docker Hub's hello-world: two Windows entries that differ only in os.version", () => {
  it('lists them apart in platforms, with os.version', async () => {
    const w1 = await pushImage(reg, 'tools/win', {
      arch: 'amd64',
      os: 'windows',
      osVersion: '10.0.17763.6414',
      format: 'docker'
    })
    const w2 = await pushImage(reg, 'tools/win', {
      arch: 'amd64',
      os: 'windows',
      osVersion: '10.0.20348.2762',
      format: 'docker'
    })
    const list = await pushIndex(reg, 'tools/win', undefined, [w1.descriptor, w2.descriptor], {
      mediaType: MT.dockerList
    })
    const r = await mergeWith({
      tags: `${reg.host}/tools/win:hello`,
      sources: `${reg.host}/tools/win@${list.digest}\n${reg.host}/tools/src@${amd.digest}`
    })
    expect(r.platforms).toEqual([
      'windows/amd64:10.0.17763.6414',
      'windows/amd64:10.0.20348.2762',
      'linux/amd64'
    ])
  })
})

describe('manifests with a subject (BuildKit 0.32 attestations, cosign v3 bundles)', () => {
  let proxy: TestProxy
  const refused: string[] = []

  beforeAll(async () => {
    proxy = await startProxy(reg.url)
    // GitLab refuses a manifest whose subject is not in the repository yet: 400
    // MANIFEST_BLOB_UNKNOWN, detail the subject digest (moby/buildkit#7007, #7012). Image
    // manifests are held back a little, so a push that does not wait for subjects is caught.
    proxy.rules.push(async (req, res) => {
      const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(req.url ?? '')
      if (req.method !== 'PUT' || !m) return false
      const body = await new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => resolve(Buffer.concat(chunks)))
      })
      const doc = JSON.parse(body.toString('utf8')) as {
        subject?: { digest: string }
        config?: { mediaType: string }
      }
      if (!doc.subject && doc.config?.mediaType === MT.ociConfig)
        await new Promise((r) => setTimeout(r, 300))
      if (doc.subject && !(await getManifest(reg, m[1], doc.subject.digest))) {
        refused.push(m[2])
        res.writeHead(400, { 'content-type': 'application/json' })
        res.end(
          JSON.stringify({
            errors: [
              {
                code: 'MANIFEST_BLOB_UNKNOWN',
                message: 'blob unknown to registry',
                detail: doc.subject.digest
              }
            ]
          })
        )
        return true
      }
      const up = httpRequest(
        {
          host: '127.0.0.1',
          port: new URL(reg.url).port,
          method: 'PUT',
          path: req.url,
          headers: req.headers
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers)
          r.pipe(res)
        }
      )
      up.end(body)
      return true
    })
  })
  afterAll(async () => {
    await proxy?.stop()
  })

  it('pushes each subject before the attestation that names it', async () => {
    const att = await pushArtifact('tools/src', {
      layerType: MT.inToto,
      content: JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        predicateType: 'https://slsa.dev/provenance/v1'
      }),
      subject: amd,
      config: JSON.stringify({ architecture: 'unknown', os: 'unknown' })
    })
    const idx = await pushIndex(reg, 'tools/src', undefined, [
      amd.descriptor,
      {
        mediaType: MT.ociManifest,
        digest: att.digest,
        size: att.size,
        platform: unknown,
        annotations: {
          'vnd.docker.reference.type': 'attestation-manifest',
          'vnd.docker.reference.digest': amd.digest
        }
      }
    ])
    const r = await mergeWith({
      tags: `${proxy.host}/tools/gitlab:att`,
      sources: `${proxy.host}/tools/src@${idx.digest}\n${proxy.host}/tools/src@${arm.digest}`
    })
    expect(refused).toEqual([])
    expect((await index('tools/gitlab', 'att')).manifests.map((m) => m.digest)).toEqual([
      amd.digest,
      att.digest,
      arm.digest
    ])
    expect(r.attestations[amd.digest]).toBe('kept (1)')
  })

  it('copies a cosign v3 bundle referrer with copy-referrers, after its image', async () => {
    const bundle = await pushArtifact('tools/src', {
      artifactType: SIGSTORE_BUNDLE,
      layerType: SIGSTORE_BUNDLE,
      content: JSON.stringify({
        mediaType: SIGSTORE_BUNDLE,
        verificationMaterial: {},
        messageSignature: {}
      }),
      subject: arm
    })
    // Distribution 2.8 has no referrers API: cosign keeps the OCI tag-schema fallback current.
    const hex = arm.digest.slice('sha256:'.length)
    await pushIndex(reg, 'tools/src', `sha256-${hex}`, [
      {
        mediaType: MT.ociManifest,
        digest: bundle.digest,
        size: bundle.size,
        artifactType: SIGSTORE_BUNDLE
      } as Descriptor
    ])
    await mergeWith({
      tags: `${proxy.host}/tools/signed:v1`,
      sources: `${proxy.host}/tools/src@${arm.digest}\n${proxy.host}/tools/src@${amd.digest}`,
      'copy-referrers': 'true'
    })
    expect(refused).toEqual([])
    const fallback = await index('tools/signed', `sha256-${hex}`)
    expect(fallback.manifests).toEqual([
      expect.objectContaining({ digest: bundle.digest, artifactType: SIGSTORE_BUNDLE })
    ])
    expect((await getManifest(reg, 'tools/signed', bundle.digest))?.body).toBe(bundle.body)
  })
})

describe('a signed schema 1 manifest', () => {
  it('gets the schema 1 message, not a digest mismatch (registries re-sign it on every GET)', async () => {
    const proxy = await startProxy(reg.url)
    const digest = `sha256:${'5'.repeat(64)}`
    proxy.rules.push((req, res) => {
      if (!req.url?.endsWith(`/manifests/${digest}`)) return false
      const body = JSON.stringify({
        schemaVersion: 1,
        name: 'tools/old',
        tag: 'latest',
        architecture: 'amd64',
        fsLayers: [],
        history: [],
        signatures: [{ header: { alg: 'ES256' }, signature: 'x', protected: 'y' }]
      })
      res.writeHead(200, {
        'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws',
        'docker-content-digest': digest,
        'content-length': Buffer.byteLength(body)
      })
      res.end(req.method === 'HEAD' ? undefined : body)
      return true
    })
    try {
      await expect(
        mergeWith({
          tags: `${proxy.host}/tools/old:merged`,
          sources: `${proxy.host}/tools/old@${digest}`
        })
      ).rejects.toThrow(/Docker schema 1 manifest, which cannot be part of a multi-arch index/)
    } finally {
      await proxy.stop()
    }
  })
})

describe('append onto a tag whose index has annotations', () => {
  it('keeps them, unless the annotations input replaces them', async () => {
    await pushIndex(reg, 'tools/src', 'rel', [amd.descriptor], {
      annotations: {
        'org.opencontainers.image.source': 'https://example.com/app',
        'org.opencontainers.image.version': '1.0'
      }
    })
    const r = await mergeWith({
      tags: `${reg.host}/tools/src:rel`,
      sources: `${reg.host}/tools/src@${arm.digest}`,
      append: 'true',
      annotations: 'index:org.opencontainers.image.version=1.1'
    })
    const out = await index('tools/src', 'rel')
    expect(out.annotations).toEqual({
      'org.opencontainers.image.source': 'https://example.com/app',
      'org.opencontainers.image.version': '1.1'
    })
    expect(out.manifests.map((m) => m.digest)).toEqual([amd.digest, arm.digest])
    expect(r.log.join('\n')).toContain(
      'append: keep the index annotations the tag holds: org.opencontainers.image.source'
    )
  })
})
