// The same merge matrix against every registry profile (../helpers/profiles): each profile plays
// one registry's documented behaviour in front of one shared, real Distribution registry, and
// every cell either passes or fails with the message a user of that registry needs. What the
// registry holds afterwards is read straight from the upstream registry, not through the profile.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { request as httpRequest } from 'node:http'
import { runAction } from '../helpers/action.js'
import {
  pushAttestedWithSubject,
  pushBundleReferrer,
  pushCosignSignature,
  pushUnplatformedCompanion,
  SIGSTORE_BUNDLE
} from '../helpers/profiles/fixtures.js'
import { withProfileClient } from '../helpers/profiles/client.js'
import {
  PROFILE_NAMES,
  startProfiles,
  type ProfileName,
  type Profiles,
  type RegistryProfile
} from '../helpers/profiles/index.js'
import {
  getManifest,
  MT,
  pushAttestationWrapped,
  pushImage,
  pushIndex,
  request,
  sha256,
  type Descriptor,
  type PushedImage
} from '../helpers/oci.js'
import { startRegistry, type TestRegistry } from '../helpers/registry.js'
import { parseInputs } from '../../src/inputs.js'
import type { Logger } from '../../src/logger.js'
import { createClient } from '../../src/runner.js'
import { merge, type MergeResult } from '../../src/merge.js'
import { StaticCredentials } from '../../src/registry/credentials.js'

let upstream: TestRegistry
let profiles: Profiles

beforeAll(async () => {
  upstream = await startRegistry()
  profiles = await startProfiles(upstream)
})
afterAll(async () => {
  await profiles?.stop()
  await upstream?.stop()
})

interface Run extends MergeResult {
  log: string[]
}

/** The merge in-process, with the profile's credentials (a password, or an identity token). */
async function run(
  p: RegistryProfile,
  values: Record<string, string>,
  o: { identityToken?: boolean } = {}
): Promise<Run> {
  const log: string[] = []
  const logger: Logger = {
    info: (m) => log.push(m),
    warning: (m) => log.push(`warning: ${m}`),
    debug: (m) => log.push(`debug: ${m}`),
    group: (name, fn) => {
      log.push(`group: ${name}`)
      return fn()
    }
  }
  const inputs = parseInputs((n) => values[n] ?? '')
  const credential = o.identityToken
    ? { identityToken: p.identityToken }
    : { username: p.user, password: p.password }
  const client = createClient(inputs, {
    credentials: new StaticCredentials({ explicit: new Map([[p.host, credential]]) }),
    baseDelayMs: 20,
    onRetry: (r) => log.push(`retry ${r.attempt} ${r.reason}`)
  })
  try {
    return { ...(await merge(client, inputs, logger)), log }
  } finally {
    await client.close()
  }
}

/** The run's error (it must fail). */
async function failure(promise: Promise<unknown>): Promise<Error> {
  const e = await promise.then(
    () => undefined,
    (err: unknown) => err as Error
  )
  if (!e) throw new Error('the merge succeeded, but it was expected to fail')
  return e
}

async function digestOf(repo: string, ref: string): Promise<string | undefined> {
  return (await getManifest(upstream, repo, ref))?.digest
}

async function indexOf(
  repo: string,
  ref: string
): Promise<{ mediaType: string; manifests: Array<Descriptor & { artifactType?: string }> }> {
  const m = await getManifest(upstream, repo, ref)
  if (!m) throw new Error(`${repo}:${ref} is not in the registry`)
  return { mediaType: m.mediaType, ...(JSON.parse(m.body) as { manifests: Descriptor[] }) }
}

const digests = (x: { manifests: Array<{ digest: string }> }): string[] =>
  x.manifests.map((m) => m.digest)

/** The PUTs a profile received for repositories under `ns` since `from`. */
function putsSince(p: RegistryProfile, ns: string, from: number): string[] {
  return p.proxy.requests
    .slice(from)
    .filter((r) => r.method === 'PUT' && r.path.startsWith(`/v2/${ns}/`))
    .map((r) => r.path)
}

let seq = 0
/** A namespace of its own for one cell, and the tag reference into it. */
function cell(p: RegistryProfile, id: string): { ns: string; tag: (t?: string) => string } {
  const ns = `${p.name}/${id}-${++seq}`
  // ECR: repositories exist only once created (the matrix creates its targets, as users must).
  p.createRepository(`${ns}/app`)
  return { ns, tag: (t = '1') => `${p.host}/${ns}/app:${t}` }
}

/** How each registry refuses to move an immutable tag, and what the action must say. */
const IMMUTABLE: Partial<Record<ProfileName, RegExp[]>> = {
  dockerhub: [/HTTP 403 DENIED/, /overwrite \(delete\) permission .* or the tag is immutable/],
  ecr: [/HTTP 400 TAG_INVALID/, /the tag is immutable \(.* has immutable tags\)/],
  harbor: [/HTTP 412 PRECONDITION/, /a tag immutability rule of/],
  artifactory: [/HTTP 400 MANIFEST_INVALID/, /lack overwrite \(delete\) permission/]
}

for (const name of PROFILE_NAMES) {
  describe(`${name}`, () => {
    let p: RegistryProfile
    beforeAll(() => {
      p = profiles.byName[name]
    })

    it('merges two per-arch images into a manifest list', async () => {
      const c = cell(p, 'plain')
      const amd = await pushImage(upstream, `${c.ns}/app`, {
        arch: 'amd64',
        seed: c.ns,
        format: 'docker'
      })
      const arm = await pushImage(upstream, `${c.ns}/app`, {
        arch: 'arm64',
        variant: 'v8',
        seed: c.ns,
        format: 'docker'
      })
      const r = await run(p, { tags: c.tag(), sources: `${amd.digest}\n${arm.digest}` })
      const held = await indexOf(`${c.ns}/app`, '1')
      expect(held.mediaType).toBe(MT.dockerList)
      expect(digests(held)).toEqual([amd.digest, arm.digest])
      expect(await digestOf(`${c.ns}/app`, '1')).toBe(r.index.digest)
      expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64/v8'])
      expect(r.tags.map((t) => t.outcome)).toEqual(['pushed'])
    })

    describe('attestation-wrapped sources (BuildKit)', () => {
      const wrapped = async (
        ns: string,
        predicates?: string[]
      ): Promise<Array<Awaited<ReturnType<typeof pushAttestationWrapped>>>> =>
        Promise.all(
          ['amd64', 'arm64'].map((arch) =>
            pushAttestationWrapped(upstream, `${ns}/app`, { arch, seed: ns, predicates })
          )
        )

      it('keeps the attestations', async () => {
        const c = cell(p, 'keep')
        const [a, b] = await wrapped(c.ns)
        const r = await run(p, { tags: c.tag(), sources: `${a.indexDigest}\n${b.indexDigest}` })
        const held = await indexOf(`${c.ns}/app`, '1')
        // An index that carries attestations is OCI: Quay refuses unknown layer types in Docker
        // manifests and requires a platform on every list entry.
        expect(held.mediaType).toBe(MT.ociIndex)
        expect(digests(held)).toEqual([
          a.imageDigest,
          a.attestationDigest,
          b.imageDigest,
          b.attestationDigest
        ])
        expect(r.attestations[a.imageDigest]).toBe('kept (1)')
      })

      it('strips them', async () => {
        const c = cell(p, 'strip')
        const [a, b] = await wrapped(c.ns)
        const r = await run(p, {
          tags: c.tag(),
          sources: `${a.indexDigest}\n${b.indexDigest}`,
          attestations: 'strip'
        })
        expect(digests(await indexOf(`${c.ns}/app`, '1'))).toEqual([a.imageDigest, b.imageDigest])
        expect(r.attestations[b.imageDigest]).toBe('stripped (1)')
      })

      it('strips provenance and keeps the SBOM', async () => {
        const c = cell(p, 'noprov')
        const [a, b] = await wrapped(c.ns, [
          'https://spdx.dev/Document',
          'https://slsa.dev/provenance/v0.2'
        ])
        const r = await run(p, {
          tags: c.tag(),
          sources: `${a.indexDigest}\n${b.indexDigest}`,
          attestations: 'strip-provenance'
        })
        const held = await indexOf(`${c.ns}/app`, '1')
        expect(held.manifests.map((m) => m.platform?.os)).toEqual([
          'linux',
          'unknown',
          'linux',
          'unknown'
        ])
        const rewritten = held.manifests[1].digest
        expect(rewritten).not.toBe(a.attestationDigest)
        const att = JSON.parse((await getManifest(upstream, `${c.ns}/app`, rewritten))!.body) as {
          layers: Descriptor[]
        }
        expect(att.layers.map((l) => l.annotations?.['in-toto.io/predicate-type'])).toEqual([
          'https://spdx.dev/Document'
        ])
        expect(r.attestations[a.imageDigest]).toMatch(/^provenance stripped/)
      })

      it('copies BuildKit 0.32 attestations (with a subject) from another repository, subjects first', async () => {
        const c = cell(p, 'subject')
        const app = `${c.ns}/app`
        // GitLab's rule on every registry here (a manifest whose subject is not there yet is
        // refused), and each image manifest PUT held until a PUT that names it as its subject
        // has been answered, or 500 ms: an attestation pushed before its image is refused.
        p.configure(c.ns, { subjectMustExist: true, holdImageManifestsMs: 500 })
        const [a, b] = await Promise.all(
          ['amd64', 'arm64'].map((arch) =>
            pushAttestedWithSubject(upstream, `${c.ns}/src`, { arch, seed: c.ns })
          )
        )
        const r = await run(p, {
          tags: c.tag(),
          sources: `${p.host}/${c.ns}/src@${a.index}\n${p.host}/${c.ns}/src@${b.index}`
        })
        expect(digests(await indexOf(`${c.ns}/app`, '1'))).toEqual([
          a.image.digest,
          a.attestation.digest,
          b.image.digest,
          b.attestation.digest
        ])
        expect((await getManifest(upstream, `${c.ns}/app`, a.attestation.digest))?.body).toBe(
          a.attestation.body
        )
        // Both images went through the hold, and no attestation came before its image.
        expect(p.count('held', app)).toBe(2)
        expect(p.count('subject-missing', app)).toBe(0)
        expect(r.attestations[b.image.digest]).toBe('kept (1)')
      })
    })

    it('attaches the attestations as referrers of their images (attestations: referrers), subjects first', async () => {
      const c = cell(p, 'referrers')
      const app = `${c.ns}/app`
      // As in the cell above: a referrer pushed before its image would be refused.
      p.configure(c.ns, { subjectMustExist: true, holdImageManifestsMs: 500 })
      const [a, b] = await Promise.all(
        ['amd64', 'arm64'].map((arch) =>
          pushAttestationWrapped(upstream, `${c.ns}/src`, { arch, seed: c.ns })
        )
      )
      const r = await run(p, {
        tags: c.tag(),
        sources: `${p.host}/${c.ns}/src@${a.indexDigest}\n${p.host}/${c.ns}/src@${b.indexDigest}`,
        attestations: 'referrers'
      })
      expect(digests(await indexOf(app, '1'))).toEqual([a.imageDigest, b.imageDigest])
      expect(p.count('held', app)).toBe(2)
      expect(p.count('subject-missing', app)).toBe(0)
      // Listed as the registry lists referrers: its API, or the fallback tag (GHCR's redirect
      // is not followed).
      await withProfileClient(p, async (client) => {
        for (const src of [a, b]) {
          const listed = await client.listReferrers(
            { registry: p.host, repository: app },
            src.imageDigest
          )
          expect(listed.descriptors.map((d) => d.artifactType)).toEqual([
            'application/vnd.docker.attestation.manifest.v1+json'
          ])
          const m = JSON.parse(
            (await getManifest(upstream, app, listed.descriptors[0].digest))!.body
          ) as { subject?: { digest: string } }
          expect(m.subject?.digest).toBe(src.imageDigest)
        }
      })
      expect(r.attestations[a.imageDigest]).toBe('attached as referrers (1)')
    })

    describe('sources in another repository of the registry', () => {
      const stage = async (ns: string): Promise<PushedImage[]> =>
        Promise.all(
          ['amd64', 'arm64'].map((arch) =>
            pushImage(upstream, `${ns}/staging`, { arch, seed: ns, layers: 2 })
          )
        )
      const release = (ns: string): string => `${ns}/release`

      it('mounts the blobs (or streams them where the registry does not mount)', async () => {
        const c = cell(p, 'mount')
        p.createRepository(release(c.ns))
        const imgs = await stage(c.ns)
        const r = await run(p, {
          tags: `${p.host}/${release(c.ns)}:1`,
          sources: imgs.map((i) => `${p.host}/${c.ns}/staging@${i.digest}`).join('\n')
        })
        expect(await digestOf(release(c.ns), '1')).toBe(r.index.digest)
        for (const i of imgs) expect(await digestOf(release(c.ns), i.digest)).toBe(i.digest)
        const stats = r.log.join('\n')
        if (p.optionsFor(release(c.ns)).refuseMounts)
          expect(stats).toMatch(/2 manifest\(s\) pushed, 0 blob\(s\) mounted, 6 streamed/)
        else expect(stats).toMatch(/2 manifest\(s\) pushed, 6 blob\(s\) mounted, 0 streamed/)
      })

      it('streams the blobs when the registry refuses the mount', async () => {
        const c = cell(p, 'nomount')
        p.createRepository(release(c.ns))
        p.configure(c.ns, { refuseMounts: true })
        const imgs = await stage(c.ns)
        const r = await run(p, {
          tags: `${p.host}/${release(c.ns)}:1`,
          sources: imgs.map((i) => `${p.host}/${c.ns}/staging@${i.digest}`).join('\n')
        })
        expect(await digestOf(release(c.ns), '1')).toBe(r.index.digest)
        expect(r.log.join('\n')).toMatch(/0 blob\(s\) mounted, 6 streamed/)
        expect(p.count('mount-refused', release(c.ns))).toBeGreaterThan(0)
      })
    })

    it('reruns onto a tag that already holds the digest without writing anything', async () => {
      const c = cell(p, 'rerun')
      // With immutable tags on where the registry has them: one that refuses even a PUT of the
      // same digest (ECR, Harbor) must not be asked. No PUT at all is the check, for every
      // registry.
      p.configure(c.ns, { immutableTags: true })
      const a = await pushAttestationWrapped(upstream, `${c.ns}/app`, { arch: 'amd64', seed: c.ns })
      const b = await pushImage(upstream, `${c.ns}/app`, { arch: 'arm64', seed: c.ns })
      const inputs = { tags: c.tag(), sources: `${a.indexDigest}\n${b.digest}` }
      const first = await run(p, inputs)
      const from = p.proxy.requests.length
      const again = await run(p, inputs)
      expect(again.index.digest).toBe(first.index.digest)
      expect(again.tags.map((t) => t.outcome)).toEqual(['unchanged'])
      expect(putsSince(p, c.ns, from)).toEqual([])
    })

    it(
      IMMUTABLE[name]
        ? 'refuses to overwrite an immutable tag, saying why, and skips it with on-conflict: skip'
        : 'overwrites a tag (this registry has no immutable tags to emulate)',
      async () => {
        const c = cell(p, 'overwrite')
        p.configure(c.ns, { immutableTags: true })
        const old = await pushImage(upstream, `${c.ns}/app`, {
          arch: 'amd64',
          seed: 'old',
          tag: '1'
        })
        const imgs = await Promise.all(
          ['amd64', 'arm64'].map((arch) => pushImage(upstream, `${c.ns}/app`, { arch, seed: c.ns }))
        )
        const inputs = { tags: c.tag(), sources: imgs.map((i) => i.digest).join('\n') }
        const expected = IMMUTABLE[name]
        if (!expected) {
          const r = await run(p, inputs)
          expect(r.tags[0]).toMatchObject({ outcome: 'pushed', previous: old.digest })
          expect(await digestOf(`${c.ns}/app`, '1')).toBe(r.index.digest)
          return
        }
        const e = await failure(run(p, inputs))
        expect(e.message).toContain(`tag ${c.tag()} holds ${old.digest}`)
        for (const re of expected) expect(e.message).toMatch(re)
        expect(e.message).not.toMatch(/policy/)
        expect(await digestOf(`${c.ns}/app`, '1')).toBe(old.digest)
        const skipped = await run(p, { ...inputs, 'on-conflict': 'skip' })
        expect(skipped.tags[0].outcome).toBe('skipped')
        expect(await digestOf(`${c.ns}/app`, '1')).toBe(old.digest)
      }
    )

    describe('append', () => {
      it('adds the sources to what the tag holds', async () => {
        const c = cell(p, 'append')
        const amd = await pushImage(upstream, `${c.ns}/app`, { arch: 'amd64', seed: c.ns })
        const arm = await pushImage(upstream, `${c.ns}/app`, { arch: 'arm64', seed: c.ns })
        await pushIndex(upstream, `${c.ns}/app`, '1', [amd.descriptor])
        const r = await run(p, { tags: c.tag(), sources: arm.digest, append: 'true' })
        expect(digests(await indexOf(`${c.ns}/app`, '1'))).toEqual([amd.digest, arm.digest])
        expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64'])
      })

      it('onto a tag that does not exist yet merges the sources alone', async () => {
        const c = cell(p, 'append-new')
        const arm = await pushImage(upstream, `${c.ns}/app`, { arch: 'arm64', seed: c.ns })
        const r = await run(p, { tags: c.tag(), sources: arm.digest, append: 'true' })
        expect(digests(await indexOf(`${c.ns}/app`, '1'))).toEqual([arm.digest])
        expect(r.log.join('\n')).toContain('does not exist yet; merging the sources alone')
        // Artifactory answers 403 for the tag that is not there.
        if (name === 'artifactory')
          expect(p.count('missing-tag-403', `${c.ns}/app`)).toBeGreaterThan(0)
      })
    })

    it('copies referrers (a cosign v3 bundle, a cosign .sig tag) with copy-referrers', async () => {
      const c = cell(p, 'referrers')
      const src = `${c.ns}/src`
      const [amd, arm] = await Promise.all(
        ['amd64', 'arm64'].map((arch) => pushImage(upstream, src, { arch, seed: c.ns }))
      )
      const api = p.optionsFor(src).referrers === 'api'
      const bundle = await pushBundleReferrer(upstream, src, amd, !api)
      const sig = await pushCosignSignature(upstream, src, arm)
      const hitsBefore = profiles.ghcrPackagesHits.length
      await run(p, {
        tags: c.tag(),
        sources: `${p.host}/${src}@${amd.digest}\n${p.host}/${src}@${arm.digest}`,
        'copy-referrers': 'true'
      })
      const app = `${c.ns}/app`
      expect((await getManifest(upstream, app, bundle.digest))?.body).toBe(bundle.body)
      expect(await digestOf(app, `${arm.digest.replace(':', '-')}.sig`)).toBe(sig.digest)
      const fallback = amd.digest.replace(':', '-')
      if (api) {
        // Listed by the referrers API: no fallback tag is written.
        expect(p.count('referrers-api', app)).toBeGreaterThan(0)
        expect(await getManifest(upstream, app, fallback)).toBeUndefined()
      } else {
        expect((await indexOf(app, fallback)).manifests).toEqual([
          expect.objectContaining({ digest: bundle.digest, artifactType: SIGSTORE_BUNDLE })
        ])
      }
      if (name === 'ghcr') {
        // The 303 is never followed to the host that rate-limits it.
        expect(p.count('referrers-redirect', src)).toBeGreaterThan(0)
        expect(profiles.ghcrPackagesHits.slice(hitsBefore)).toEqual([])
      }
    })

    if (!['ecr', 'nexus'].includes(name)) {
      it.each([
        ['by the OAuth2 POST', undefined],
        ['by GET where the POST is refused (404, as GCR answers it)', 404]
      ])('gets a token with an identity token %s', async (_how, refused) => {
        const c = cell(p, refused ? 'idtoken-get' : 'idtoken')
        if (refused) p.configure(c.ns, { oauthPostStatus: refused })
        const img = await pushImage(upstream, `${c.ns}/app`, { arch: 'amd64', seed: c.ns })
        const from = p.tokenRequests.length
        const r = await run(p, { tags: c.tag(), sources: img.digest }, { identityToken: true })
        expect(await digestOf(`${c.ns}/app`, '1')).toBe(r.index.digest)
        const asked = p.tokenRequests.slice(from).map((t) => `${t.method} ${t.status}`)
        if (refused) {
          expect(asked.slice(0, 2)).toEqual([`POST ${refused}`, 'GET 200'])
          expect(asked).not.toContain('POST 200')
        } else {
          expect(asked[0]).toBe('POST 200')
          expect(asked).not.toContain('GET 200')
        }
      })
    }
  })
}

describe('what only some registries do', () => {
  const prof = (n: ProfileName): RegistryProfile => profiles.byName[n]

  it('ECR: a repository that was not created: says to create it', async () => {
    const p = prof('ecr')
    const ns = `ecr/uncreated-${++seq}`
    const img = await pushImage(upstream, `${ns}/src`, { arch: 'amd64', seed: ns })
    const e = await failure(
      run(p, { tags: `${p.host}/${ns}/app:1`, sources: `${p.host}/${ns}/src@${img.digest}` })
    )
    expect(e.message).toMatch(/NAME_UNKNOWN/)
    expect(e.message).toMatch(/does not exist.*create it first/)
    expect(p.count('missing-repo', `${ns}/app`)).toBeGreaterThan(0)
    expect(await getManifest(upstream, `${ns}/app`, '1')).toBeUndefined()
  })

  it('Harbor: a pull blocked by a project policy is named as such, not as immutability', async () => {
    const p = prof('harbor')
    const ns = `harbor/policy-${++seq}`
    p.configure(`${ns}/src`, { policyBlocksPulls: true })
    const img = await pushImage(upstream, `${ns}/src`, { arch: 'amd64', seed: ns })
    const e = await failure(
      run(p, { tags: `${p.host}/${ns}/app:1`, sources: `${p.host}/${ns}/src@${img.digest}` })
    )
    expect(e.message).toMatch(/PROJECTPOLICYVIOLATION/)
    expect(e.message).toMatch(/project policy of this Harbor registry/)
    expect(e.message).not.toMatch(/immutab/)
  })

  it('Docker Hub: retries the 429 that comes as plain text (HAP429) and goes on', async () => {
    const p = prof('dockerhub')
    const ns = `dockerhub/hap429-${++seq}`
    p.configure(`${ns}/app`, { rateLimitedGets: 2 })
    const a = await pushAttestationWrapped(upstream, `${ns}/app`, { arch: 'amd64', seed: ns })
    const b = await pushImage(upstream, `${ns}/app`, { arch: 'arm64', seed: ns })
    const r = await run(p, {
      tags: `${p.host}/${ns}/app:1`,
      sources: `${a.indexDigest}\n${b.digest}`
    })
    expect(await digestOf(`${ns}/app`, '1')).toBe(r.index.digest)
    expect(p.count('rate-limited', `${ns}/app`)).toBe(2)
    expect(r.log.filter((l) => l.startsWith('retry '))).toEqual([
      expect.stringContaining('Too Many Requests (HAP429).'),
      expect.stringContaining('Too Many Requests (HAP429).')
    ])
  })

  it('Docker Hub: a used-up pull limit fails with its message, and the allowance is logged', async () => {
    const p = prof('dockerhub')
    const ns = `dockerhub/pull-limit-${++seq}`
    const img = await pushImage(upstream, `${ns}/src`, { arch: 'amd64', seed: ns })
    // The tag's HEAD carries the allowance; the GET of the source hits the used-up limit.
    p.configure(`${ns}/src`, { pullLimitReached: true })
    const out = await runAction({
      tags: `${p.host}/${ns}/app:1`,
      sources: `${p.host}/${ns}/src@${img.digest}`,
      username: p.user,
      password: p.password,
      retries: '1'
    })
    expect(out.code).not.toBe(0)
    expect(out.stdout).toMatch(/::error::.*You have reached your pull rate limit/)
    expect(out.stdout).toMatch(new RegExp(`rate limit remaining at ${p.host}: \\d+;w=21600`))
  })

  it('Artifactory: an overwrite refused as a bare 403 is a conflict too', async () => {
    const p = prof('artifactory')
    const ns = `artifactory/forbidden-${++seq}`
    p.configure(ns, { immutableTags: true, overwriteAnswer: '403' })
    const old = await pushImage(upstream, `${ns}/app`, { arch: 'amd64', seed: 'old', tag: '1' })
    const img = await pushImage(upstream, `${ns}/app`, { arch: 'arm64', seed: ns })
    const e = await failure(run(p, { tags: `${p.host}/${ns}/app:1`, sources: img.digest }))
    expect(e.message).toMatch(/refused to overwrite it \(HTTP 403/)
    expect(e.message).toMatch(/overwrite \(delete\) permission/)
    expect(await digestOf(`${ns}/app`, '1')).toBe(old.digest)
  })

  it('Artifactory: the 400 that wraps a 403, as the user sees it in the workflow log', async () => {
    const p = prof('artifactory')
    const ns = `artifactory/seed-${++seq}`
    p.configure(ns, { immutableTags: true })
    await pushImage(upstream, `${ns}/app`, { arch: 'amd64', seed: 'old', tag: '1' })
    const img = await pushImage(upstream, `${ns}/app`, { arch: 'arm64', seed: ns })
    const out = await runAction({
      tags: `${p.host}/${ns}/app:1`,
      sources: img.digest,
      username: p.user,
      password: p.password
    })
    expect(out.code).not.toBe(0)
    expect(out.stdout).toMatch(
      /::error::.*refused to overwrite it \(HTTP 400 MANIFEST_INVALID\).*lack overwrite \(delete\) permission/
    )
  })

  it('Gitea: an OCI index answered 404: says what was refused and what to set', async () => {
    const p = prof('gitea')
    const ns = `gitea/index404-${++seq}`
    p.configure(ns, { refuseOciIndex: true })
    const [a, b] = await Promise.all(
      ['amd64', 'arm64'].map((arch) =>
        pushAttestationWrapped(upstream, `${ns}/app`, { arch, seed: ns })
      )
    )
    const e = await failure(
      run(p, { tags: `${p.host}/${ns}/app:1`, sources: `${a.indexDigest}\n${b.indexDigest}` })
    )
    expect(e.message).toMatch(
      /refused the index sha256:[a-f0-9]{64} \(application\/vnd\.oci\.image\.index\.v1\+json, 4 entries\)/
    )
    expect(e.message).toMatch(/attestations: strip/)
    expect(e.message).toMatch(/format: docker/)
    // The way out it names: Docker images, attestations stripped, a Docker manifest list.
    const [x, y] = await Promise.all(
      ['amd64', 'arm64'].map((arch) =>
        pushImage(upstream, `${ns}/app`, { arch, seed: `${ns}-d`, format: 'docker' })
      )
    )
    const r = await run(p, {
      tags: `${p.host}/${ns}/app:1`,
      sources: `${x.digest}\n${y.digest}`,
      format: 'docker',
      attestations: 'strip'
    })
    expect(r.index.mediaType).toBe(MT.dockerList)
    expect(await digestOf(`${ns}/app`, '1')).toBe(r.index.digest)
  })

  it('Gitea: an attestation that is an OCI artifact answered 501: suggests attestations: strip', async () => {
    const p = prof('gitea')
    const ns = `gitea/artifact501-${++seq}`
    p.configure(ns, { refuseArtifacts: true })
    const a = await pushAttestedWithSubject(upstream, `${ns}/src`, { arch: 'amd64', seed: ns })
    const source = `${p.host}/${ns}/src@${a.index}`
    const e = await failure(run(p, { tags: `${p.host}/${ns}/app:1`, sources: source }))
    expect(e.message).toMatch(/HTTP 501 \(UNSUPPORTED: Schema version is not supported\)/)
    expect(e.message).toMatch(/attestations: strip/)
    const r = await run(p, {
      tags: `${p.host}/${ns}/app:1`,
      sources: source,
      attestations: 'strip'
    })
    expect(await digestOf(`${ns}/app`, '1')).toBe(r.index.digest)
  })

  it('Nexus: a manifest list answered with a bare 400: says which index was refused', async () => {
    const p = prof('nexus')
    const ns = `nexus/list400-${++seq}`
    p.configure(ns, { refuseLists: true })
    const imgs = await Promise.all(
      ['amd64', 'arm64'].map((arch) =>
        pushImage(upstream, `${ns}/app`, { arch, seed: ns, format: 'docker' })
      )
    )
    const sources = imgs.map((i) => i.digest).join('\n')
    const e = await failure(run(p, { tags: `${p.host}/${ns}/app:1`, sources }))
    expect(e.message).toMatch(
      /refused the index sha256:[a-f0-9]{64} \(application\/vnd\.docker\.distribution\.manifest\.list\.v2\+json, 2 entries\)/
    )
    expect(e.message).toMatch(/MANIFEST_INVALID/)
    // An OCI index of the same images is taken.
    const r = await run(p, { tags: `${p.host}/${ns}/app:1`, sources, format: 'oci' })
    expect(await digestOf(`${ns}/app`, '1')).toBe(r.index.digest)
  })

  it('Quay (older): Docker images in an OCI index refused by its schema: says what to set', async () => {
    const p = prof('quay')
    const ns = `quay/schema-${++seq}`
    p.configure(ns, { ociIndexOciEntriesOnly: true })
    const amd = await pushImage(upstream, `${ns}/app`, {
      arch: 'amd64',
      seed: ns,
      format: 'docker'
    })
    const arm = await pushAttestationWrapped(upstream, `${ns}/app`, { arch: 'arm64', seed: ns })
    const e = await failure(
      run(p, { tags: `${p.host}/${ns}/app:1`, sources: `${amd.digest}\n${arm.indexDigest}` })
    )
    expect(e.message).toMatch(/refused the index/)
    expect(e.message).toMatch(/is not one of/)
    expect(e.message).toMatch(/attestations: strip/)
    expect(e.message).toMatch(/format: docker/)
  })

  // Quay requires `platform` on every index entry (selfhosted.ts); a companion entry that has
  // none in its source must reach it as unknown/unknown.
  it.each(['annotation', 'subject'] as const)(
    'Quay: a source whose builder entry has no platform field (its image named by %s) is merged, the entry as unknown/unknown',
    async (by) => {
      const p = prof('quay')
      const ns = `quay/unplatformed-${++seq}`
      const src = `${ns}/src`
      const a = await pushUnplatformedCompanion(upstream, src, { arch: 'amd64', seed: ns, by })
      const arm = await pushImage(upstream, src, { arch: 'arm64', seed: ns })
      const r = await run(p, {
        tags: `${p.host}/${ns}/app:1`,
        sources: `${p.host}/${src}@${a.index}\n${p.host}/${src}@${arm.digest}`
      })
      const held = await indexOf(`${ns}/app`, '1')
      expect(await digestOf(`${ns}/app`, '1')).toBe(r.index.digest)
      expect(digests(held)).toEqual([a.image.digest, a.companion.digest, arm.digest])
      expect(held.manifests[1]).toMatchObject({
        platform: { architecture: 'unknown', os: 'unknown' },
        annotations: expect.objectContaining({ 'vnd.docker.reference.type': 'builder' })
      })
      expect(r.platforms).toEqual(['linux/amd64', 'linux/arm64'])
    }
  )

  it('Google Artifact Registry: its 21 KB of response headers are read (the bundled action)', async () => {
    const p = prof('gar')
    const ns = `gar/headers-${++seq}`
    const imgs = await Promise.all(
      ['amd64', 'arm64'].map((arch) => pushImage(upstream, `${ns}/src`, { arch, seed: ns }))
    )
    const out = await runAction({
      tags: `${p.host}/${ns}/app:1`,
      sources: imgs.map((i) => `${p.host}/${ns}/src@${i.digest}`).join('\n'),
      username: p.user,
      password: p.password
    })
    expect(out.stdout).not.toMatch(/::error::/)
    expect(out.code).toBe(0)
    expect(out.outputs.digest).toBe(await digestOf(`${ns}/app`, '1'))
    expect(out.outputs.platforms).toBe('linux/amd64,linux/arm64')
    expect((await raw(`${p.url}/v2/`)).headerBytes).toBeGreaterThan(21 * 1024)
  })
})

describe('the emulations answer as their sources say', () => {
  const prof = (n: ProfileName): RegistryProfile => profiles.byName[n]
  let img: PushedImage
  const repo = 'emulation/src'
  beforeAll(async () => {
    img = await pushImage(upstream, repo, { arch: 'amd64', seed: 'emulation' })
    await pushIndex(upstream, repo, 'list', [img.descriptor])
  })

  it('Distribution itself (under every profile) refuses an OCI index to a client that does not accept it', async () => {
    const r = await call(prof('dockerhub'), 'GET', `/v2/${repo}/manifests/list`, {
      headers: { accept: MT.dockerList }
    })
    expect(r.status).toBe(404)
    expect(errorsOf(r)[0].message).toBe(
      'OCI index found, but accept header does not support OCI indexes'
    )
  })

  it('challenges: Bearer with a token host of its own (Docker Hub), Basic (ECR), BASIC (Nexus), scope "*" (Gitea)', async () => {
    const hub = await raw(`${prof('dockerhub').url}/v2/${repo}/manifests/list`)
    const realm = /realm="([^"]+)"/.exec(String(hub.headers['www-authenticate']))![1]
    expect(new URL(realm).host).not.toBe(prof('dockerhub').host)
    expect(hub.headers['www-authenticate']).toMatch(
      new RegExp(`service="registry.docker.io",scope="repository:${repo}:pull"`)
    )
    const ecr = await raw(`${prof('ecr').url}/v2/`)
    expect(ecr.headers['www-authenticate']).toMatch(
      /^Basic realm=".*",service="ecr.amazonaws.com"$/
    )
    expect(ecr.body.trim()).toBe('Not Authorized')
    expect((await raw(`${prof('nexus').url}/v2/`)).headers['www-authenticate']).toBe(
      'BASIC realm="Sonatype Nexus Repository Manager"'
    )
    expect((await raw(`${prof('gitea').url}/v2/`)).headers['www-authenticate']).toMatch(
      /scope="\*"$/
    )
  })

  it('token servers: ACR answers access_token only; the OAuth2 POST refused with 404 where asked (GCR)', async () => {
    const acr = prof('acr')
    const www = String((await raw(`${acr.url}/v2/`)).headers['www-authenticate'])
    const realm = /realm="([^"]+)"/.exec(www)![1]
    const basic = `Basic ${Buffer.from(`${acr.user}:${acr.password}`).toString('base64')}`
    expect(
      Object.keys(JSON.parse((await raw(realm, { headers: { authorization: basic } })).body))
    ).not.toContain('token')
    const gar = prof('gar')
    const garRealm = /realm="([^"]+)"/.exec(
      String((await raw(`${gar.url}/v2/`)).headers['www-authenticate'])
    )![1]
    gar.configure('emulation/gar-post', { oauthPostStatus: 404 })
    const post = (repo: string): Promise<Raw> =>
      raw(garRealm, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=refresh_token&refresh_token=${gar.identityToken}&scope=repository:${repo}:pull`
      })
    expect((await post('emulation/gar-post/app')).status).toBe(404)
    expect((await post('emulation/other/app')).status).toBe(200)
  })

  it('Docker Hub: manifest answers carry the pull allowance, which HEAD does not spend', async () => {
    const p = prof('dockerhub')
    const get = await call(p, 'GET', `/v2/${repo}/manifests/${img.digest}`, {
      headers: { accept: MT.ociManifest }
    })
    const head = await call(p, 'HEAD', `/v2/${repo}/manifests/${img.digest}`, {
      headers: { accept: MT.ociManifest }
    })
    expect(get.headers['ratelimit-limit']).toBe('100;w=21600')
    expect(head.headers['ratelimit-remaining']).toBe(get.headers['ratelimit-remaining'])
  })

  it('GHCR: the referrers endpoint is a 303 to another host, with the digest cut short', async () => {
    const r = await call(prof('ghcr'), 'GET', `/v2/${repo}/referrers/${img.digest}`)
    expect(r.status).toBe(303)
    const to = new URL(String(r.headers.location))
    expect(to.host).not.toBe(prof('ghcr').host)
    expect(to.pathname).toMatch(/\/referrers\/sha256:[a-f0-9]{12}$/)
  })

  it('ECR: 404 NAME_UNKNOWN for a repository not created; OCI-Subject on a PUT with a subject', async () => {
    const p = prof('ecr')
    const missing = await call(p, 'GET', '/v2/emulation/never-created/tags/list')
    expect(missing.status).toBe(404)
    expect(errorsOf(missing)[0]).toMatchObject({
      code: 'NAME_UNKNOWN',
      message: expect.stringMatching(
        /^The repository with name 'emulation\/never-created' does not exist in the registry with id '\d{12}'$/
      )
    })
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      artifactType: SIGSTORE_BUNDLE,
      config: JSON.parse(img.body).config,
      layers: [],
      subject: { mediaType: img.mediaType, digest: img.digest, size: img.size }
    })
    const put = await call(p, 'PUT', `/v2/${repo}/manifests/${sha256(body)}`, {
      headers: { 'content-type': MT.ociManifest },
      body
    })
    expect(put.status).toBe(201)
    expect(put.headers['oci-subject']).toBe(img.digest)
  })

  it('Quay: a list entry without platform, and a Docker manifest with a foreign layer type, are refused', async () => {
    const p = prof('quay')
    const noPlatform = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.dockerList,
      manifests: [{ mediaType: MT.ociManifest, digest: img.digest, size: img.size }]
    })
    const r = await call(p, 'PUT', `/v2/${repo}/manifests/noplatform`, {
      headers: { 'content-type': MT.dockerList },
      body: noPlatform
    })
    expect(r.status).toBe(400)
    expect(errorsOf(r)[0]).toMatchObject({
      code: 'MANIFEST_INVALID',
      detail: { message: expect.stringContaining("'platform' is a required property") }
    })
    const doc = JSON.parse(img.body) as { config: Descriptor; layers: Descriptor[] }
    const docker = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { ...doc.config, mediaType: MT.dockerConfig },
      layers: [{ ...doc.layers[0], mediaType: MT.inToto }]
    })
    const d = await call(p, 'PUT', `/v2/${repo}/manifests/${sha256(docker)}`, {
      headers: { 'content-type': MT.dockerManifest },
      body: docker
    })
    expect(d.status).toBe(400)
    expect(JSON.stringify(errorsOf(d)[0].detail)).toContain(
      "'application/vnd.in-toto+json' is not one of"
    )
  })

  it('Harbor: 412 PROJECTPOLICYVIOLATION on GET and HEAD; 412 PRECONDITION for an immutable tag', async () => {
    const p = prof('harbor')
    p.configure('emulation/harbor-policy', { policyBlocksPulls: true })
    p.configure('emulation/harbor-immutable', { immutableTags: true })
    await pushImage(upstream, 'emulation/harbor-policy', { arch: 'amd64', seed: 'e', tag: 'v1' })
    const held = await pushImage(upstream, 'emulation/harbor-immutable', {
      arch: 'amd64',
      seed: 'e',
      tag: 'v1'
    })
    const get = await call(p, 'GET', '/v2/emulation/harbor-policy/manifests/v1')
    expect(get.status).toBe(412)
    expect(errorsOf(get)[0].code).toBe('PROJECTPOLICYVIOLATION')
    expect((await call(p, 'HEAD', '/v2/emulation/harbor-policy/manifests/v1')).status).toBe(412)
    const put = await call(p, 'PUT', '/v2/emulation/harbor-immutable/manifests/v1', {
      headers: { 'content-type': held.mediaType },
      body: held.body
    })
    expect(put.status).toBe(412)
    expect(errorsOf(put)[0]).toEqual({
      code: 'PRECONDITION',
      message:
        "Failed to process request due to 'emulation/harbor-immutable:v1' configured as immutable."
    })
  })

  it('Artifactory: 403 for a tag that does not exist, 404 for a digest', async () => {
    const p = prof('artifactory')
    const tag = await call(p, 'GET', `/v2/${repo}/manifests/no-such-tag`)
    expect(tag.status).toBe(403)
    expect(errorsOf(tag)[0].message).toMatch(/^The client does not have permission for manifest/)
    expect((await call(p, 'HEAD', `/v2/${repo}/manifests/no-such-tag`)).status).toBe(403)
    const digest = await call(p, 'GET', `/v2/${repo}/manifests/sha256:${'0'.repeat(64)}`)
    expect(digest.status).toBe(404)
  })

  it('GitLab: a manifest whose subject is not in the repository is refused', async () => {
    const subject = `sha256:${'1'.repeat(64)}`
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: JSON.parse(img.body).config,
      layers: [],
      subject: { mediaType: MT.ociManifest, digest: subject, size: 2 }
    })
    const r = await call(prof('gitlab'), 'PUT', `/v2/${repo}/manifests/${sha256(body)}`, {
      headers: { 'content-type': MT.ociManifest },
      body
    })
    expect(r.status).toBe(400)
    expect(errorsOf(r)[0]).toEqual({
      code: 'MANIFEST_BLOB_UNKNOWN',
      message: 'blob unknown to registry',
      detail: subject
    })
  })

  it('GitLab with held image manifests: an attestation PUT while its image is still on its way is refused', async () => {
    const p = prof('gitlab')
    const target = `emulation/gitlab-order-${++seq}`
    // Held until the attestation's PUT has been answered: no timing decides the order (the
    // bound is only there so that a broken emulation fails instead of hanging).
    p.configure(target, { holdImageManifestsMs: 30_000 })
    const doc = JSON.parse(img.body) as { config: Descriptor; layers: Descriptor[] }
    for (const b of [doc.config, ...doc.layers]) {
      const mounted = await request(
        upstream,
        'POST',
        `/v2/${target}/blobs/uploads/?mount=${b.digest}&from=${repo}`
      )
      expect(mounted.status).toBe(201)
    }
    const attestation = JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: doc.config,
      layers: [],
      subject: { mediaType: img.mediaType, digest: img.digest, size: img.size }
    })
    const put = (ref: string, body: string): Promise<Raw> =>
      call(p, 'PUT', `/v2/${target}/manifests/${ref}`, {
        headers: { 'content-type': MT.ociManifest },
        body
      })
    const image = put(img.digest, img.body)
    expect((await p.waitFor('held', target)).detail).toBe(img.digest)
    const early = await put(sha256(attestation), attestation)
    expect(early.status).toBe(400)
    expect(errorsOf(early)[0]).toMatchObject({ code: 'MANIFEST_BLOB_UNKNOWN', detail: img.digest })
    expect((await image).status).toBe(201)
    expect((await p.waitFor('released', target)).detail).toBe(`${img.digest} by referrer`)
    expect((await put(sha256(attestation), attestation)).status).toBe(201)
  })

  it('the referrers API (Harbor, ACR, Quay, ECR, GAR) filters by artifactType, as the OCI spec says', async () => {
    const p = prof('harbor')
    const src = `emulation/api-${++seq}`
    const subject = await pushImage(upstream, src, { arch: 'amd64', seed: src })
    const bundle = await pushBundleReferrer(upstream, src, subject, false)
    const all = await call(p, 'GET', `/v2/${src}/referrers/${subject.digest}`)
    expect(all.status).toBe(200)
    expect(JSON.parse(all.body)).toEqual({
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: [
        {
          mediaType: MT.ociManifest,
          digest: bundle.digest,
          size: bundle.size,
          artifactType: SIGSTORE_BUNDLE,
          annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' }
        }
      ]
    })
    const none = await call(
      p,
      'GET',
      `/v2/${src}/referrers/${subject.digest}?artifactType=application%2Fexample`
    )
    expect(none.headers['oci-filters-applied']).toBe('artifactType')
    expect(JSON.parse(none.body).manifests).toEqual([])
    const other = await call(p, 'GET', `/v2/${src}/referrers/sha256:${'2'.repeat(64)}`)
    expect([other.status, JSON.parse(other.body).manifests]).toEqual([200, []])
  })
})

interface Raw {
  status: number
  headers: Record<string, string | string[] | undefined>
  headerBytes: number
  body: string
}

/** One HTTP exchange, reading headers of any size. */
function raw(
  url: string | URL,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {}
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const headers = { ...o.headers }
    if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body))
    const req = httpRequest(
      url,
      { method: o.method ?? 'GET', maxHeaderSize: 256 * 1024, headers },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            headerBytes: res.rawHeaders.reduce((n, h) => n + h.length + 2, 0),
            body: Buffer.concat(chunks).toString('utf8')
          })
        )
      }
    )
    req.on('error', reject)
    req.end(o.body)
  })
}

/**
 * A request through a profile as a client makes it: answered 401, it authenticates the way the
 * challenge says (a token from the realm with Basic credentials, or Basic itself) and asks again.
 */
async function call(
  p: RegistryProfile,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: string } = {}
): Promise<Raw> {
  const first = await raw(`${p.url}${path}`, { method, ...o })
  if (first.status !== 401) return first
  const basic = `Basic ${Buffer.from(`${p.user}:${p.password}`).toString('base64')}`
  const www = String(first.headers['www-authenticate'])
  let authorization = basic
  if (/^bearer /i.test(www)) {
    const realm = new URL(/realm="([^"]+)"/.exec(www)![1])
    const scope = /scope="([^"]+)"/.exec(www)?.[1]
    if (scope) realm.searchParams.set('scope', scope)
    const t = JSON.parse((await raw(realm, { headers: { authorization: basic } })).body) as {
      token?: string
      access_token?: string
    }
    authorization = `Bearer ${t.token ?? t.access_token}`
  }
  return raw(`${p.url}${path}`, {
    method,
    ...o,
    headers: { ...o.headers, authorization }
  })
}

const errorsOf = (r: Raw): Array<{ code: string; message: string; detail?: unknown }> =>
  (JSON.parse(r.body) as { errors: Array<{ code: string; message: string; detail?: unknown }> })
    .errors
