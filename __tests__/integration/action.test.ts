// The bundled action run exactly as a runner runs it: node dist/index.js, INPUT_* variables,
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runAction } from '../helpers/action.js'
import {
  blobExists,
  getManifest,
  MT,
  pushAttestationWrapped,
  pushBlob,
  pushImage,
  pushManifest,
  sha256
} from '../helpers/oci.js'
import { startRegistry, snapshotStorage, type TestRegistry } from '../helpers/registry.js'
import { skopeoInspectRaw } from '../helpers/tools.js'

let a: TestRegistry
let b: TestRegistry

beforeAll(async () => {
  ;[a, b] = await Promise.all([startRegistry(), startRegistry()])
})
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()])
})

describe('node dist/index.js', () => {
  it('merges digests from a digests-dir and writes every output', async () => {
    const amd = await pushAttestationWrapped(a, 'e2e/app', { arch: 'amd64', seed: 'e1' })
    const arm = await pushImage(a, 'e2e/app', {
      arch: 'arm64',
      variant: 'v8',
      seed: 'e1',
      format: 'docker'
    })
    const dir = await mkdtemp(join(tmpdir(), 'digests-'))
    await writeFile(join(dir, amd.indexDigest.slice(7)), '')
    await writeFile(join(dir, arm.digest.slice(7)), '')
    try {
      const run = await runAction({
        tags: `${a.host}/e2e/app:1.0.0,${a.host}/e2e/app:latest`,
        'digests-dir': dir
      })
      expect(run.stdout).not.toMatch(/::error::/)
      expect(run.code).toBe(0)
      const o = run.outputs
      const served = await getManifest(a, 'e2e/app', '1.0.0')
      expect(o.digest).toBe(served?.digest)
      expect(sha256(await skopeoInspectRaw(`${a.host}/e2e/app:latest`))).toBe(o.digest)
      expect(o.manifest).toBe(served?.body)
      expect(o['media-type']).toBe(MT.ociIndex)
      expect(o.images).toBe(`${a.host}/e2e/app@${o.digest}`)
      expect(o.tags).toBe(`${a.host}/e2e/app:1.0.0\n${a.host}/e2e/app:latest`)
      expect(new Set(o.platforms.split(','))).toEqual(new Set(['linux/amd64', 'linux/arm64/v8']))
      expect(JSON.parse(o['platform-digests'])).toEqual({
        'linux/amd64': amd.imageDigest,
        'linux/arm64/v8': arm.digest
      })
      expect(run.stdout).toMatch(/::group::Resolve sources/)
      expect(run.stdout).toContain(
        `::notice::${o.digest} (${o.platforms.split(',').join(', ')}); pushed to ${a.host}/e2e/app:1.0.0, ${a.host}/e2e/app:latest`
      )
      expect(run.summary).toMatch(/<table>/)
      expect(run.summary).toContain(amd.attestationDigest)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('talks to a plain-HTTP registry without loading TLS, HTTP/2, undici or fs.promises', async () => {
    const amd = await pushImage(a, 'e2e/lean', { arch: 'amd64', seed: 'l1' })
    const arm = await pushImage(a, 'e2e/lean', { arch: 'arm64', seed: 'l1' })
    const dir = await mkdtemp(join(tmpdir(), 'lean-'))
    const list = join(dir, 'modules')
    const preload = join(dir, 'modules.cjs')
    // Node's own record of the built-in modules the process loaded, written as it exits.
    await writeFile(
      preload,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join('\\n')))`
    )
    try {
      const run = await runAction(
        {
          tags: `${a.host}/e2e/lean:1`,
          sources: `${a.host}/e2e/lean@${amd.digest}\n${a.host}/e2e/lean@${arm.digest}`
        },
        { NODE_OPTIONS: `--require ${preload}` }
      )
      expect(run.code).toBe(0)
      expect((await getManifest(a, 'e2e/lean', '1'))?.digest).toBe(run.outputs.digest)
      const loaded = (await readFile(list, 'utf8')).split('\n')
      expect(loaded).toContain('NativeModule http')
      // tls and http2 are for HTTPS registries; assert is the first thing undici (proxies
      // only) requires, v8 is what loading it tunes, and Node's own undici is what an ESM
      // import of node:http would pull in. fs.promises (with readline and fs watchers) is what
      // @actions/core's summary read at load, and the block list is for NO_PROXY ranges.
      const unwanted = [
        'tls',
        'http2',
        'assert',
        'v8',
        'internal/deps/undici/undici',
        'internal/fs/promises',
        'internal/blocklist'
      ]
      expect(loaded.filter((m) => unwanted.some((u) => m === `NativeModule ${u}`))).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('dry-run sets the outputs and leaves the registry as it was', async () => {
    const x = await pushImage(a, 'e2e/dry', { arch: 'amd64', seed: 'e2' })
    const before = await snapshotStorage(a.storageDir)
    const run = await runAction({
      tags: `${a.host}/e2e/dry:1`,
      sources: x.digest,
      'dry-run': 'true'
    })
    expect(run.code).toBe(0)
    expect(run.outputs.digest).toBe(sha256(run.outputs.manifest))
    expect(run.stdout).toMatch(/dry-run: would push/)
    expect(await snapshotStorage(a.storageDir)).toEqual(before)
  })

  it('fails on bad input naming the input and the value, writing nothing', async () => {
    const before = await snapshotStorage(a.storageDir)
    const run = await runAction({ tags: `${a.host}/e2e/bad:1`, sources: 'sha256:1234' })
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/::error::input sources: "sha256:1234" is not a valid digest/)
    expect(run.outputs.digest).toBeUndefined()
    expect(await snapshotStorage(a.storageDir)).toEqual(before)
  })

  it('streams a 256 MB layer across registries with a small peak RSS', async () => {
    const layer = randomBytes(256 * 1024 * 1024)
    const l = await pushBlob(a, 'big/src', layer)
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [l.digest] }
    })
    const c = await pushBlob(a, 'big/src', config)
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: c.digest, size: c.size },
      layers: [{ mediaType: MT.ociLayer, digest: l.digest, size: l.size }]
    })
    const digest = await pushManifest(a, 'big/src', 'v1', manifest, MT.ociManifest)

    const run = await runAction({
      tags: `${b.host}/big/dst:v1`,
      sources: `${a.host}/big/src@${digest}`
    })
    expect(run.stdout).not.toMatch(/::error::/)
    expect(run.code).toBe(0)
    expect(await blobExists(b, 'big/dst', l.digest)).toBe(true)
    expect((await getManifest(b, 'big/dst', 'v1'))?.digest).toBe(run.outputs.digest)
    const mb = (run.peakRss / 1024 / 1024).toFixed(1)
    process.stdout.write(`peak RSS while streaming a 256 MB layer across registries: ${mb} MB\n`)
    expect(run.peakRss).toBeGreaterThan(0)
    // Flat in the layer's size, not small in absolute terms: Node 20 peaks near 120 MB, Node 24
    // near 165 MB whether the layer is 256 or 512 MB (its GC lets freed buffers linger longer).
    // A copy that held the layer would need more than the layer itself.
    expect(run.peakRss).toBeLessThan(224 * 1024 * 1024)
  })

  it('warns when the job summary cannot be written, and still succeeds', async () => {
    const img = await pushImage(a, 'e2e/summary', { arch: 'amd64', seed: 'sum' })
    const run = await runAction(
      { tags: `${a.host}/e2e/summary:1`, sources: `${a.host}/e2e/summary@${img.digest}` },
      { GITHUB_STEP_SUMMARY: '/nonexistent/folder/summary.md' }
    )
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^::warning::the job summary could not be written: /m)
    expect(run.stdout).not.toMatch(/::error::/)
    expect((await getManifest(a, 'e2e/summary', '1'))?.digest).toBe(run.outputs.digest)
  })

  it('warns that an input named with underscores (INPUT_DRY_RUN) is ignored', async () => {
    const img = await pushImage(a, 'e2e/underscore', { arch: 'amd64', seed: 'und' })
    const run = await runAction(
      { tags: `${a.host}/e2e/underscore:1`, sources: `${a.host}/e2e/underscore@${img.digest}` },
      { INPUT_DRY_RUN: 'true' }
    )
    expect(run.stdout).toContain(
      '::warning::INPUT_DRY_RUN is ignored: the runner passes input dry-run as INPUT_DRY-RUN, with the hyphen'
    )
    expect(run.code).toBe(0)
    // Not a dry run: the tag was pushed.
    expect((await getManifest(a, 'e2e/underscore', '1'))?.digest).toBe(run.outputs.digest)
  })

  it('names source-repository when a bare digest is not in the first tag repository', async () => {
    const img = await pushImage(a, 'e2e/elsewhere', { arch: 'amd64', seed: 'bare' })
    const run = await runAction({ tags: `${a.host}/e2e/release:1`, sources: img.digest })
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(
      /^::error::.*not found on registry .*a bare digest is looked up in the first tag's repository, 127\.0\.0\.1:\d+\/e2e\/release: set source-repository/m
    )
    const fixed = await runAction({
      tags: `${a.host}/e2e/release:1`,
      sources: img.digest,
      'source-repository': `${a.host}/e2e/elsewhere`
    })
    expect(fixed.code).toBe(0)
  })
})
