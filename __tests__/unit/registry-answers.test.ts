// What registries' own answers mean: error bodies, and the predicates and advice built on them.
import { describe, expect, it } from '@jest/globals'
import { indexRefusalAdvice } from '../../src/core/plan.js'
import { DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../src/core/mediatypes.js'
import {
  adviceFor,
  describeErrorBody,
  isAbsent,
  isPolicyViolation,
  isRepositoryMissing,
  isTagConflict,
  RegistryError
} from '../../src/registry/errors.js'
import { att, image } from '../helpers/children.js'

function answer(status: number, body: string): RegistryError {
  const { code, text, detail } = describeErrorBody(body)
  return new RegistryError(text, {
    status,
    code,
    detail,
    registry: 'r.io',
    repository: 'acme/app'
  })
}

const oci = (code: string, message: string, detail?: unknown): string =>
  JSON.stringify({ errors: [{ code, message, ...(detail === undefined ? {} : { detail }) }] })

describe('error bodies', () => {
  it('reads a body that is not JSON as text (Docker Hub HAP429)', () => {
    expect(describeErrorBody('Too Many Requests (HAP429).\n')).toEqual({
      text: 'Too Many Requests (HAP429).'
    })
  })

  it("shows a short detail, and Artifactory's description object as text", () => {
    const d = describeErrorBody(
      oci('MANIFEST_INVALID', 'manifest invalid', { description: 'HTTP 403 Forbidden' })
    )
    expect(d).toEqual({
      code: 'MANIFEST_INVALID',
      text: 'MANIFEST_INVALID: manifest invalid (HTTP 403 Forbidden)',
      detail: 'HTTP 403 Forbidden'
    })
  })

  it('ignores fields of the wrong type', () => {
    expect(describeErrorBody('{"errors":[{"code":5,"message":{"a":1}}]}').code).toBeUndefined()
    expect(describeErrorBody('{"errors":"nope"}').text).toBe('{"errors":"nope"}')
  })
})

describe('what an answer means', () => {
  it("takes Artifactory's 400 MANIFEST_INVALID with a 403 inside as a tag that may not move", () => {
    const e = answer(
      400,
      oci('MANIFEST_INVALID', 'manifest invalid', { description: 'HTTP 403 Forbidden' })
    )
    expect(isTagConflict(e)).toBe(true)
    expect(adviceFor(e, 'PUT')).toMatch(/lack overwrite \(delete\) permission/)
    // A manifest that is really invalid is not a conflict.
    expect(isTagConflict(answer(400, oci('MANIFEST_INVALID', 'manifest invalid')))).toBe(false)
  })

  it("takes Artifactory's 403 on a missing tag as absent", () => {
    expect(isAbsent(answer(403, oci('DENIED', 'forbidden')))).toBe(true)
  })

  it("tells Harbor's pull policy from its immutable tags", () => {
    const policy = answer(
      412,
      oci(
        'PROJECTPOLICYVIOLATION',
        'current image with 2 vulnerabilities cannot be pulled due to configured policy'
      )
    )
    expect(isPolicyViolation(policy)).toBe(true)
    expect(isTagConflict(policy)).toBe(false)
    expect(adviceFor(policy, 'GET')).toMatch(/project policy .* blocks pulling it/)
    const immutable = answer(412, oci('PRECONDITION', 'the tag v1 configured as immutable'))
    expect(isTagConflict(immutable)).toBe(true)
    expect(adviceFor(immutable, 'PUT')).toBeUndefined()
  })

  it("names ECR's missing repository on a push, not on a read", () => {
    const e = answer(
      404,
      oci(
        'NAME_UNKNOWN',
        "The repository with name 'acme/app' does not exist in the registry with id '123456789012'"
      )
    )
    expect(isRepositoryMissing(e)).toBe(true)
    expect(adviceFor(e, 'POST')).toBe(
      'repository acme/app does not exist on r.io, and this registry does not create repositories on push (Amazon ECR, for one): create it first'
    )
    expect(adviceFor(e, 'GET')).toBeUndefined()
  })
})

describe('advice when a registry refuses the index itself', () => {
  const index = (mediaType: string): { bytes: Uint8Array; mediaType: string; digest: string } => ({
    bytes: new Uint8Array(),
    mediaType,
    digest: 'sha256:' + '0'.repeat(64)
  })
  const docker = (n: number): ReturnType<typeof image> => image(n, 'linux/amd64', DOCKER_MANIFEST)

  it('suggests format: docker when the images are Docker manifests', () => {
    expect(indexRefusalAdvice(index(OCI_INDEX), [docker(1)])).toBe(
      'if it does not take OCI indexes, set format: docker'
    )
  })

  it('suggests attestations: strip when the index carries attestations', () => {
    expect(indexRefusalAdvice(index(OCI_INDEX), [docker(1), att(2, 1)])).toBe(
      'if it refuses attestation entries (platform unknown/unknown), set attestations: strip; if it does not take OCI indexes, set format: docker with attestations: strip'
    )
  })

  it('says the images must be Docker ones when they are OCI manifests', () => {
    const c = image(1, 'linux/amd64')
    expect(c.descriptor.mediaType).toBe(OCI_MANIFEST)
    expect(indexRefusalAdvice(index(OCI_INDEX), [c])).toMatch(/oci-mediatypes=false/)
    expect(indexRefusalAdvice(index(DOCKER_LIST), [docker(1)])).toBe('')
  })
})
