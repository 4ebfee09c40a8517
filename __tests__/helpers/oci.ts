// Test helper: raw OCI Distribution API calls and image fixtures, independent from the product code.
//
// Requests go through node:http / node:https (not global fetch) so the same helpers work against the
// TLS test registry (trusting `reg.caFile`) and the htpasswd one (`reg.auth`, sent preemptively as
// Basic auth). A TestRegistry from ./registry.js can be passed directly as `reg`.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { gzipSync } from 'node:zlib'

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  inToto: 'application/vnd.in-toto+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip'
} as const

export const MANIFEST_ACCEPT = [MT.ociIndex, MT.ociManifest, MT.dockerList, MT.dockerManifest]

export interface RegistryRef {
  url: string
  /** Basic-auth credentials, sent with every request. */
  auth?: { user: string; password: string }
  /** CA PEM file to trust for https URLs. */
  caFile?: string
}

export interface Platform {
  architecture: string
  os: string
  variant?: string
  'os.version'?: string
  'os.features'?: string[]
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: Platform
  annotations?: Record<string, string>
}

export function sha256(b: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

export function basicAuthHeader(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}

// ---------------------------------------------------------------------------------------------
// HTTP

export interface RawResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

const caCache = new Map<string, string>()

/** One HTTP request against the registry. `pathOrUrl` is resolved against reg.url. */
export function request(
  reg: RegistryRef,
  method: string,
  pathOrUrl: string,
  opts: { headers?: Record<string, string>; body?: Uint8Array | string } = {}
): Promise<RawResponse> {
  const u = new URL(pathOrUrl, reg.url)
  const headers: Record<string, string> = { ...(opts.headers ?? {}) }
  if (reg.auth && headers.authorization === undefined && headers.Authorization === undefined) {
    headers.Authorization = basicAuthHeader(reg.auth.user, reg.auth.password)
  }
  const body =
    opts.body === undefined
      ? undefined
      : typeof opts.body === 'string'
        ? Buffer.from(opts.body)
        : Buffer.from(opts.body.buffer, opts.body.byteOffset, opts.body.byteLength)
  if (body !== undefined) headers['Content-Length'] = String(body.length)
  else if (method === 'PUT' || method === 'POST' || method === 'PATCH') {
    headers['Content-Length'] = '0'
  }
  let ca: string | undefined
  if (u.protocol === 'https:' && reg.caFile) {
    ca = caCache.get(reg.caFile)
    if (ca === undefined) {
      ca = readFileSync(reg.caFile, 'utf8')
      caCache.set(reg.caFile, ca)
    }
  }
  const mod = u.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = mod.request(u, { method, headers, ca, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })
      )
    })
    req.on('error', reject)
    req.end(body)
  })
}

function fail(what: string, res: RawResponse): never {
  throw new Error(`${what}: HTTP ${res.status} ${res.body.toString('utf8').slice(0, 2000)}`)
}

function header(res: RawResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()]
  return Array.isArray(v) ? v[0] : v
}

// ---------------------------------------------------------------------------------------------
// Distribution API

/** Monolithic upload: POST /blobs/uploads/ then PUT <location>?digest=. */
export async function pushBlob(
  reg: RegistryRef,
  repo: string,
  data: Uint8Array | string
): Promise<{ digest: string; size: number }> {
  const buf = typeof data === 'string' ? Buffer.from(data) : data
  const digest = sha256(buf)
  const start = await request(reg, 'POST', `/v2/${repo}/blobs/uploads/`)
  if (start.status !== 202) fail(`POST /v2/${repo}/blobs/uploads/`, start)
  const location = header(start, 'location')
  if (!location) throw new Error('blob upload: no Location header')
  const put = new URL(location, reg.url)
  put.searchParams.set('digest', digest)
  const res = await request(reg, 'PUT', put.toString(), {
    headers: { 'Content-Type': 'application/octet-stream' },
    body: buf
  })
  if (res.status !== 201) fail(`PUT blob ${digest} to ${repo}`, res)
  const got = header(res, 'docker-content-digest')
  if (got !== undefined && got !== digest) {
    throw new Error(`blob upload: registry says ${got}, expected ${digest}`)
  }
  return { digest, size: buf.byteLength }
}

/** PUT a manifest (exact bytes). Returns its digest; asserts Docker-Content-Digest agrees. */
export async function pushManifest(
  reg: RegistryRef,
  repo: string,
  reference: string,
  body: string,
  mediaType: string
): Promise<string> {
  const digest = sha256(body)
  const res = await request(reg, 'PUT', `/v2/${repo}/manifests/${reference}`, {
    headers: { 'Content-Type': mediaType },
    body
  })
  if (res.status !== 201) fail(`PUT manifest ${repo}:${reference}`, res)
  const got = header(res, 'docker-content-digest')
  if (got !== digest) {
    throw new Error(`manifest push: Docker-Content-Digest ${got}, expected ${digest}`)
  }
  return digest
}

/** GET a manifest accepting all four manifest media types; undefined on 404. */
export async function getManifest(
  reg: RegistryRef,
  repo: string,
  reference: string
): Promise<{ body: string; mediaType: string; digest: string } | undefined> {
  const res = await request(reg, 'GET', `/v2/${repo}/manifests/${reference}`, {
    headers: { Accept: MANIFEST_ACCEPT.join(', ') }
  })
  if (res.status === 404) return undefined
  if (res.status !== 200) fail(`GET manifest ${repo}:${reference}`, res)
  const body = res.body.toString('utf8')
  const digest = sha256(res.body)
  const got = header(res, 'docker-content-digest')
  if (got !== undefined && got !== digest) {
    throw new Error(`GET manifest: Docker-Content-Digest ${got} but body hashes to ${digest}`)
  }
  const mediaType = (header(res, 'content-type') ?? '').split(';')[0].trim()
  return { body, mediaType, digest }
}

export async function blobExists(reg: RegistryRef, repo: string, digest: string): Promise<boolean> {
  const res = await request(reg, 'HEAD', `/v2/${repo}/blobs/${digest}`)
  if (res.status === 200) return true
  if (res.status === 404) return false
  return fail(`HEAD blob ${repo}@${digest}`, res)
}

export async function getBlob(reg: RegistryRef, repo: string, digest: string): Promise<Buffer> {
  const res = await request(reg, 'GET', `/v2/${repo}/blobs/${digest}`)
  if (res.status !== 200) fail(`GET blob ${repo}@${digest}`, res)
  return res.body
}

/** Tags of a repository, sorted ([] when the repository does not exist). Distribution 2.8 returns
 * them in no particular order. */
export async function listTags(reg: RegistryRef, repo: string): Promise<string[]> {
  const res = await request(reg, 'GET', `/v2/${repo}/tags/list`)
  if (res.status === 404) return []
  if (res.status !== 200) fail(`GET tags ${repo}`, res)
  const json = JSON.parse(res.body.toString('utf8')) as { tags?: string[] | null }
  return [...(json.tags ?? [])].sort()
}

export async function deleteManifest(
  reg: RegistryRef,
  repo: string,
  digest: string
): Promise<void> {
  const res = await request(reg, 'DELETE', `/v2/${repo}/manifests/${digest}`)
  if (res.status !== 202) fail(`DELETE manifest ${repo}@${digest}`, res)
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/** A real (ustar) tar archive holding the given files; deterministic (mtime 0, root-owned). */
export function makeTar(files: { name: string; content: string | Uint8Array }[]): Buffer {
  const parts: Buffer[] = []
  for (const f of files) {
    const data = typeof f.content === 'string' ? Buffer.from(f.content) : Buffer.from(f.content)
    const h = Buffer.alloc(512, 0)
    const put = (s: string, off: number, len: number): void => {
      h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8')
    }
    const octal = (n: number, len: number): string => n.toString(8).padStart(len - 1, '0') + '\0'
    put(f.name, 0, 100)
    put(octal(0o644, 8), 100, 8)
    put(octal(0, 8), 108, 8)
    put(octal(0, 8), 116, 8)
    put(octal(data.length, 12), 124, 12)
    put(octal(0, 12), 136, 12)
    put('        ', 148, 8)
    put('0', 156, 1)
    put('ustar\0', 257, 6)
    put('00', 263, 2)
    put('root', 265, 32)
    put('root', 297, 32)
    let sum = 0
    for (const b of h) sum += b
    put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8)
    parts.push(h, data)
    const pad = (512 - (data.length % 512)) % 512
    if (pad) parts.push(Buffer.alloc(pad, 0))
  }
  parts.push(Buffer.alloc(1024, 0))
  return Buffer.concat(parts)
}

export interface PushImageOptions {
  arch: string
  os?: string
  variant?: string
  osVersion?: string
  osFeatures?: string[]
  format?: 'oci' | 'docker'
  /** Also tag the manifest (otherwise pushed by digest only). */
  tag?: string
  /** Number of layers (default 1). */
  layers?: number
  /** Extra input to the layer contents, to make otherwise-equal images differ. */
  seed?: string
}

export interface PushedImage {
  digest: string
  size: number
  mediaType: string
  body: string
  configDigest: string
  layerDigests: string[]
  platform: Platform
  /** Descriptor as it would appear in an index (with platform). */
  descriptor: Descriptor
}

function platformOf(o: {
  arch: string
  os?: string
  variant?: string
  osVersion?: string
  osFeatures?: string[]
}): Platform {
  const p: Platform = { architecture: o.arch, os: o.os ?? 'linux' }
  if (o.variant) p.variant = o.variant
  if (o.osVersion) p['os.version'] = o.osVersion
  if (o.osFeatures && o.osFeatures.length > 0) p['os.features'] = o.osFeatures
  return p
}

/**
 * Push a small but real single-platform image (config + N gzip'd tar layers + manifest). Content is
 * deterministic in (platform, seed, layer index), so the same options give the same digest.
 */
export async function pushImage(
  reg: RegistryRef,
  repo: string,
  opts: PushImageOptions
): Promise<PushedImage> {
  const format = opts.format ?? 'oci'
  const platform = platformOf(opts)
  const nLayers = opts.layers ?? 1
  const id = `${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''}${
    platform['os.version'] ? `@${platform['os.version']}` : ''
  }`
  const layerMT = format === 'oci' ? MT.ociLayer : MT.dockerLayer
  const layers: Descriptor[] = []
  const diffIds: string[] = []
  for (let i = 0; i < nLayers; i++) {
    const tar = makeTar([
      {
        name: `layer${i}.txt`,
        content: `multiarch-merge fixture\nplatform=${id}\nseed=${opts.seed ?? ''}\nlayer=${i}\n`
      }
    ])
    diffIds.push(sha256(tar))
    const gz = gzipSync(tar)
    const blob = await pushBlob(reg, repo, gz)
    layers.push({ mediaType: layerMT, digest: blob.digest, size: blob.size })
  }
  const config: Record<string, unknown> = {
    created: '2024-01-01T00:00:00Z',
    architecture: platform.architecture,
    os: platform.os
  }
  if (platform['os.version']) config['os.version'] = platform['os.version']
  if (platform['os.features']) config['os.features'] = platform['os.features']
  if (platform.variant) config.variant = platform.variant
  config.config = {
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    Labels: { 'org.example.fixture': id, 'org.example.seed': opts.seed ?? '' }
  }
  config.rootfs = { type: 'layers', diff_ids: diffIds }
  config.history = diffIds.map((_, i) => ({
    created: '2024-01-01T00:00:00Z',
    created_by: `fixture layer ${i}`
  }))
  const configJson = JSON.stringify(config)
  const cfg = await pushBlob(reg, repo, configJson)
  const mediaType = format === 'oci' ? MT.ociManifest : MT.dockerManifest
  const manifest = {
    schemaVersion: 2,
    mediaType,
    config: {
      mediaType: format === 'oci' ? MT.ociConfig : MT.dockerConfig,
      digest: cfg.digest,
      size: cfg.size
    },
    layers
  }
  const body = JSON.stringify(manifest)
  const digest = await pushManifest(reg, repo, opts.tag ?? sha256(body), body, mediaType)
  const size = Buffer.byteLength(body)
  return {
    digest,
    size,
    mediaType,
    body,
    configDigest: cfg.digest,
    layerDigests: layers.map((l) => l.digest),
    platform,
    descriptor: { mediaType, digest, size, platform }
  }
}

/** Push an index (or list) made of the given descriptors; returns digest and exact body. */
export async function pushIndex(
  reg: RegistryRef,
  repo: string,
  reference: string | undefined,
  manifests: Descriptor[],
  opts: { mediaType?: string; annotations?: Record<string, string> } = {}
): Promise<{ digest: string; body: string; mediaType: string; size: number }> {
  const mediaType = opts.mediaType ?? MT.ociIndex
  const index: Record<string, unknown> = { schemaVersion: 2, mediaType, manifests }
  if (opts.annotations) index.annotations = opts.annotations
  const body = JSON.stringify(index)
  const digest = await pushManifest(reg, repo, reference ?? sha256(body), body, mediaType)
  return { digest, body, mediaType, size: Buffer.byteLength(body) }
}

export interface PushAttestationOptions {
  arch: string
  os?: string
  variant?: string
  osVersion?: string
  tag?: string
  /** in-toto predicate types, one layer each (default ['https://slsa.dev/provenance/v0.2']). */
  predicates?: string[]
  seed?: string
}

export interface PushedAttestationWrapped {
  indexDigest: string
  imageDigest: string
  attestationDigest: string
  indexBody: string
  indexSize: number
  image: PushedImage
  attestationBody: string
  attestationSize: number
}

function predicateFor(type: string, seed: string): unknown {
  if (type.startsWith('https://spdx.dev/')) {
    return {
      spdxVersion: 'SPDX-2.3',
      dataLicense: 'CC0-1.0',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: `sbom-${seed}`,
      packages: []
    }
  }
  if (type === 'https://slsa.dev/provenance/v1') {
    return {
      buildDefinition: { buildType: 'https://mobyproject.org/buildkit@v1', externalParameters: {} },
      runDetails: { builder: { id: '' }, metadata: { invocationID: seed } }
    }
  }
  return {
    builder: { id: '' },
    buildType: 'https://mobyproject.org/buildkit@v1',
    metadata: { buildInvocationID: seed },
    materials: []
  }
}

/**
 * Push what `docker buildx build --push` (buildx >= 0.10, provenance on by default) pushes for one
 * platform: an OCI index holding the image manifest plus an attestation manifest
 * (platform unknown/unknown, vnd.docker.reference.* annotations) whose layers are in-toto statements.
 */
export async function pushAttestationWrapped(
  reg: RegistryRef,
  repo: string,
  opts: PushAttestationOptions
): Promise<PushedAttestationWrapped> {
  const seed = opts.seed ?? ''
  const image = await pushImage(reg, repo, {
    arch: opts.arch,
    os: opts.os,
    variant: opts.variant,
    osVersion: opts.osVersion,
    format: 'oci',
    seed
  })
  const hex = image.digest.slice('sha256:'.length)
  const platformStr = [image.platform.os, image.platform.architecture, image.platform.variant]
    .filter(Boolean)
    .join('/')
  const predicates = opts.predicates ?? ['https://slsa.dev/provenance/v0.2']
  const layers: Descriptor[] = []
  for (const predicateType of predicates) {
    const statement = {
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType,
      subject: [
        {
          name: `pkg:docker/${repo}@${opts.tag ?? 'latest'}?platform=${encodeURIComponent(platformStr)}`,
          digest: { sha256: hex }
        }
      ],
      predicate: predicateFor(predicateType, seed)
    }
    const blob = await pushBlob(reg, repo, JSON.stringify(statement))
    layers.push({
      mediaType: MT.inToto,
      digest: blob.digest,
      size: blob.size,
      annotations: { 'in-toto.io/predicate-type': predicateType }
    })
  }
  const attConfig = JSON.stringify({
    architecture: 'unknown',
    os: 'unknown',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) }
  })
  const cfg = await pushBlob(reg, repo, attConfig)
  const attestationBody = JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: cfg.digest, size: cfg.size },
    layers
  })
  const attestationDigest = await pushManifest(
    reg,
    repo,
    sha256(attestationBody),
    attestationBody,
    MT.ociManifest
  )
  const indexPlatform: Platform = {
    architecture: image.platform.architecture,
    os: image.platform.os
  }
  if (image.platform.variant) indexPlatform.variant = image.platform.variant
  if (image.platform['os.version']) indexPlatform['os.version'] = image.platform['os.version']
  const index = await pushIndex(reg, repo, opts.tag, [
    { mediaType: MT.ociManifest, digest: image.digest, size: image.size, platform: indexPlatform },
    {
      mediaType: MT.ociManifest,
      digest: attestationDigest,
      size: Buffer.byteLength(attestationBody),
      annotations: {
        'vnd.docker.reference.digest': image.digest,
        'vnd.docker.reference.type': 'attestation-manifest'
      },
      platform: { architecture: 'unknown', os: 'unknown' }
    }
  ])
  return {
    indexDigest: index.digest,
    imageDigest: image.digest,
    attestationDigest,
    indexBody: index.body,
    indexSize: index.size,
    image,
    attestationBody,
    attestationSize: Buffer.byteLength(attestationBody)
  }
}

/**
 * An image with one layer of `mb` MiB of random bytes (its digest and its layer's): a tar holding one random file, gzip'd
 * with level 0 (stored blocks), so it is a valid gzip'd tar that no tool would compress further.
 */
export async function pushRandomImage(
  reg: RegistryRef,
  repo: string,
  p: Platform,
  mb: number
): Promise<{ digest: string; layer: string }> {
  const tar = makeTar([{ name: 'random.bin', content: randomBytes(mb * 1024 * 1024) }])
  const gz = gzipSync(tar, { level: 0 })
  const layer = await pushBlob(reg, repo, gz)
  const config = JSON.stringify({
    created: '2024-01-01T00:00:00Z',
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    config: {},
    rootfs: { type: 'layers', diff_ids: [sha256(tar)] }
  })
  const cfg = await pushBlob(reg, repo, config)
  const body = JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: cfg.digest, size: cfg.size },
    layers: [{ mediaType: MT.ociLayer, digest: layer.digest, size: layer.size }]
  })
  return {
    digest: await pushManifest(reg, repo, sha256(body), body, MT.ociManifest),
    layer: layer.digest
  }
}
