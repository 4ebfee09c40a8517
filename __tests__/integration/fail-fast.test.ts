// Failing fast: a target registry that cannot tell what its tags hold fails the run right there,
// naming it, before anything is copied, instead of failing again after a second round of retries.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { refusingPort } from '../helpers/forward-proxy.js'
import { startFake, type FakeServer } from '../helpers/hostile.js'
import { mergeWith } from '../helpers/merge.js'
import { pushImage, type PushedImage } from '../helpers/oci.js'
import { startRegistry, type TestRegistry } from '../helpers/registry.js'

let reg: TestRegistry
let amd: PushedImage
let arm: PushedImage
let sources: string

beforeAll(async () => {
  reg = await startRegistry()
  amd = await pushImage(reg, 'ff/src', { arch: 'amd64', seed: 'ff' })
  arm = await pushImage(reg, 'ff/src', { arch: 'arm64', seed: 'ff' })
  sources = `${reg.host}/ff/src@${amd.digest}\n${reg.host}/ff/src@${arm.digest}`
})

afterAll(async () => {
  await reg?.stop()
})

describe('a target registry that fails the tag check', () => {
  let fake: FakeServer

  beforeAll(async () => {
    // Unwell for every request: 503, as a registry behind a failing load balancer answers.
    fake = await startFake((_, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' })
      res.end('Service Unavailable')
    })
  })
  afterAll(async () => {
    await fake?.stop()
  })

  it('fails after one round of retries of the check, copying nothing', async () => {
    const e = await mergeWith({ tags: `${fake.host}/ff/app:1`, sources, retries: '2' }).then(
      () => undefined,
      (err: unknown) => err as Error
    )
    expect(e?.message).toMatch(new RegExp(`HEAD .*${fake.host.replace(/\./g, '\\.')}.*503`))
    // The check's three attempts, and nothing after it: no mount, upload or manifest PUT.
    expect(fake.requests.map((r) => r.method)).toEqual(['HEAD', 'HEAD', 'HEAD'])
  })
})

describe('a target registry where nothing listens', () => {
  it('fails on the tag check, naming the registry, after one more try', async () => {
    const dead = await refusingPort()
    try {
      const host = `127.0.0.1:${dead.port}`
      const r = mergeWith({ tags: `${host}/ff/app:1`, sources })
      await expect(r).rejects.toThrow(
        new RegExp(`cannot reach registry ${host.replace(/\./g, '\\.')}.*ECONNREFUSED`)
      )
      // The tag check's own request, not a copy's after it.
      await expect(r.catch((e: Error) => e.message)).resolves.toMatch(
        /\(HEAD \/v2\/ff\/app\/manifests\/1\)/
      )
    } finally {
      await dead.release()
    }
  })
})
