// Bad input, and bad content from a registry: each case fails with a message naming the input
// (or source) and the value, and changes nothing in the registry. What Distribution will not
// store (schema 1, oversized or broken manifests, wrong bytes) is served by a proxy rule.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { mergeWith } from '../helpers/merge.js'
import { MT, pushBlob, pushImage, pushManifest, sha256, type PushedImage } from '../helpers/oci.js'
import { startProxy, type TestProxy } from '../helpers/proxy.js'
import { snapshotStorage, startRegistry, type TestRegistry } from '../helpers/registry.js'

let reg: TestRegistry
let px: TestProxy
let good: PushedImage
let twin: PushedImage
let cacheDigest: string

const HEX = 'a'.repeat(64)
const MISSING = `sha256:${'0'.repeat(64)}`
const SCHEMA1 = 'application/vnd.docker.distribution.manifest.v1+prettyjws'

/** Serves `body` for GETs of a manifest path, as a registry would. */
function serve(path: string, body: Buffer, type: string, digest = sha256(body)) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'GET' || req.url !== path) return false
    res.writeHead(200, {
      'content-type': type,
      'content-length': String(body.length),
      'docker-content-digest': digest
    })
    res.end(body)
    return true
  }
}

beforeAll(async () => {
  reg = await startRegistry()
  px = await startProxy(reg.url)
  good = await pushImage(reg, 'bad/src', { arch: 'amd64', seed: 'good' })
  twin = await pushImage(reg, 'bad/src', { arch: 'amd64', seed: 'twin' })
  await pushImage(reg, 'bad/out', { arch: 'arm64', seed: 'old', tag: '1' })
  // What `--cache-to type=registry,mode=max` pushes: an "index" of layers and a cache config.
  const layer = await pushBlob(reg, 'bad/cache', 'cached layer')
  const config = await pushBlob(reg, 'bad/cache', '{"layers":[]}')
  const cache = JSON.stringify({
    schemaVersion: 2,
    mediaType: MT.ociIndex,
    manifests: [
      { mediaType: MT.ociLayer, digest: layer.digest, size: layer.size },
      { mediaType: 'application/vnd.buildkit.cacheconfig.v0', ...config }
    ]
  })
  cacheDigest = await pushManifest(reg, 'bad/cache', 'buildcache', cache, MT.ociIndex)
})
afterAll(async () => {
  await px?.stop()
  await reg?.stop()
})

interface Case {
  name: string
  inputs: () => Record<string, string>
  rule?: () => (req: IncomingMessage, res: ServerResponse) => boolean
  message: () => RegExp
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const tags = (): string => `${px.host}/bad/out:1`
const src = (rest: string): string => `${px.host}/bad/${rest}`

const cases: Case[] = [
  {
    name: 'a digest of the wrong length',
    inputs: () => ({ tags: tags(), sources: src('src@sha256:abc') }),
    message: () =>
      new RegExp(
        `^input sources: invalid image reference "${esc(src('src@sha256:abc'))}": sha256 digest must have 64 hex characters, got 3$`
      )
  },
  {
    name: 'a bare digest of the wrong length',
    inputs: () => ({ tags: tags(), sources: `sha256:${HEX}0` }),
    message: () =>
      new RegExp(
        `^input sources: "sha256:${HEX}0" is not a valid digest: sha256 digest must have 64 hex characters, got 65$`
      )
  },
  {
    name: 'a digest with the wrong algorithm',
    inputs: () => ({ tags: tags(), sources: src(`src@md5:${'a'.repeat(32)}`) }),
    message: () =>
      new RegExp(
        `^input sources: invalid image reference "${esc(src('src@md5:'))}a{32}": unsupported digest algorithm "md5" \\(use sha256\\)$`
      )
  },
  {
    name: 'a digest in uppercase hex',
    inputs: () => ({ tags: tags(), sources: src(`src@sha256:${HEX.toUpperCase()}`) }),
    message: () =>
      new RegExp(
        `^input sources: invalid image reference ".*@sha256:A{64}": digest hex must be lowercase$`
      )
  },
  {
    name: 'a malformed reference',
    inputs: () => ({ tags: tags(), sources: `${px.host}/Bad/src:1` }),
    message: () =>
      new RegExp(
        `^input sources: invalid image reference "${esc(px.host)}/Bad/src:1": repository names must be lowercase$`
      )
  },
  {
    name: 'a digest that does not exist',
    inputs: () => ({ tags: tags(), sources: src(`src@${MISSING}`) }),
    message: () =>
      new RegExp(
        `^source ${esc(src(`src@${MISSING}`))}: manifest ${esc(src(`src@${MISSING}`))} not found on registry ${esc(px.host)}$`
      )
  },
  {
    name: 'two sources with the same platform',
    inputs: () => ({
      tags: tags(),
      sources: `${src(`src@${good.digest}`)}\n${src(`src@${twin.digest}`)}`
    }),
    message: () =>
      new RegExp(
        `^platform linux/amd64 is provided by more than one source: ${esc(src(`src@${good.digest}`))}, ${esc(src(`src@${twin.digest}`))}; .*on-duplicate`
      )
  },
  {
    name: 'a schema 1 manifest',
    inputs: () => ({ tags: tags(), sources: src('s1:v1') }),
    rule: () =>
      serve(
        '/v2/bad/s1/manifests/v1',
        Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'bad/s1', tag: 'v1', fsLayers: [] })),
        SCHEMA1
      ),
    message: () => new RegExp(`^source ${esc(src('s1:v1'))}: this is a Docker schema 1 manifest`)
  },
  {
    name: 'a BuildKit registry cache',
    inputs: () => ({ tags: tags(), sources: src('cache:buildcache') }),
    message: () =>
      new RegExp(
        `^source ${esc(src('cache:buildcache'))} \\(index ${cacheDigest}\\): this is a build cache, not an image`
      )
  },
  {
    name: 'an empty source list',
    inputs: () => ({ tags: tags(), sources: ' \n ' }),
    message: () => /^input sources: no sources given/
  },
  {
    name: 'a tag with a digest',
    inputs: () => ({ tags: `${tags()}@${good.digest}`, sources: src(`src@${good.digest}`) }),
    message: () => new RegExp(`^input tags: "${esc(tags())}@${good.digest}" has a digest`)
  },
  {
    name: 'a platforms filter that matches nothing',
    inputs: () => ({ tags: tags(), sources: src(`src@${good.digest}`), platforms: 'linux/s390x' }),
    message: () =>
      /^input platforms: linux\/s390x matches none of the images found \(linux\/amd64\)$/
  },
  {
    name: 'a manifest over 4 MiB',
    inputs: () => ({ tags: tags(), sources: src('big:1') }),
    rule: () => serve('/v2/bad/big/manifests/1', Buffer.alloc(5 * 1024 * 1024, 32), MT.ociManifest),
    message: () =>
      new RegExp(
        `^source ${esc(src('big:1'))}: manifest ${esc(src('big:1'))} on registry ${esc(px.host)} is larger than 4 MiB, the limit for manifests$`
      )
  },
  {
    name: 'a manifest that is not JSON',
    inputs: () => ({ tags: tags(), sources: src('json:1') }),
    rule: () =>
      serve('/v2/bad/json/manifests/1', Buffer.from('{"schemaVersion": 2, oops'), MT.ociManifest),
    message: () =>
      new RegExp(
        `^source ${esc(src('json:1'))}: the registry returned a manifest that is not valid JSON`
      )
  },
  {
    name: 'content that does not match the digest asked for',
    inputs: () => ({ tags: tags(), sources: src(`src@${good.digest}`) }),
    rule: () =>
      serve(
        `/v2/bad/src/manifests/${good.digest}`,
        Buffer.from(twin.body),
        MT.ociManifest,
        good.digest
      ),
    message: () =>
      new RegExp(
        `^source ${esc(src(`src@${good.digest}`))}: manifest ${esc(src(`src@${good.digest}`))} from registry ${esc(px.host)}: content does not match its digest \\(asked for ${good.digest}, received content hashing to ${twin.digest}\\)$`
      )
  },
  {
    name: 'a config blob that does not match its digest',
    inputs: () => ({ tags: tags(), sources: src(`src@${good.digest}`) }),
    rule: () => (req, res) => {
      if (req.method !== 'GET' || req.url !== `/v2/bad/src/blobs/${good.configDigest}`) return false
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end('{"os":"linux"}')
      return true
    },
    message: () =>
      new RegExp(
        `^source ${esc(src(`src@${good.digest}`))}: blob ${good.configDigest} from ${esc(px.host)}/bad/src: content does not match its digest`
      )
  }
]

describe('bad input', () => {
  it.each(cases.map((c) => [c.name, c] as const))(
    '%s: says what and where, and changes nothing',
    async (_name, c) => {
      const before = await snapshotStorage(reg.storageDir)
      if (c.rule) px.rules.push(c.rule())
      try {
        const err = await mergeWith(c.inputs()).then(
          () => new Error('the merge succeeded'),
          (e: unknown) => e as Error
        )
        expect(err.message).toMatch(c.message())
      } finally {
        px.rules.length = 0
      }
      expect(await snapshotStorage(reg.storageDir)).toEqual(before)
    }
  )
})
