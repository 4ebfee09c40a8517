import { describe, expect, it } from '@jest/globals'
import { apiHost, formatReference, parseReference } from '../../src/core/reference.js'

const D = 'sha256:' + 'a'.repeat(64)

describe('parseReference', () => {
  it.each([
    ['alpine', { registry: 'docker.io', repository: 'library/alpine' }],
    ['alpine:3.20', { registry: 'docker.io', repository: 'library/alpine', tag: '3.20' }],
    ['acme/app:1', { registry: 'docker.io', repository: 'acme/app', tag: '1' }],
    ['index.docker.io/acme/app', { registry: 'docker.io', repository: 'acme/app' }],
    ['localhost/app', { registry: 'localhost', repository: 'app' }],
    ['localhost:5000/x', { registry: 'localhost:5000', repository: 'x' }],
    ['127.0.0.1:5000/a/b/c:t', { registry: '127.0.0.1:5000', repository: 'a/b/c', tag: 't' }],
    ['ghcr.io/acme/app@' + D, { registry: 'ghcr.io', repository: 'acme/app', digest: D }],
    [
      'ghcr.io/acme/app:1.2.3@' + D,
      { registry: 'ghcr.io', repository: 'acme/app', tag: '1.2.3', digest: D }
    ],
    // Host names are case-insensitive: written in capitals, they name the same registry.
    ['Registry/app', { registry: 'registry', repository: 'app' }],
    ['LOCALHOST:5000/app', { registry: 'localhost:5000', repository: 'app' }],
    ['[::1]:5000/app:v1', { registry: '[::1]:5000', repository: 'app', tag: 'v1' }],
    ['a.b/c__d/e-f.g:latest', { registry: 'a.b', repository: 'c__d/e-f.g', tag: 'latest' }]
  ])('%s', (input, expected) => {
    expect(parseReference(input)).toEqual(expected)
  })

  it.each([
    ['', /empty/],
    ['Alpine', /lowercase/],
    ['ghcr.io/Acme/app', /lowercase/],
    ['https://ghcr.io/a/b', /scheme/],
    ['a b', /white space/],
    ['ghcr.io/a/b:', /not a valid tag/],
    ['ghcr.io/a/b:-x', /not a valid tag/],
    ['ghcr.io/a/b@sha256:abc', /64 hex/],
    ['ghcr.io/a/b@sha256:' + 'A'.repeat(64), /lowercase/],
    ['ghcr.io/a/b@md5:' + 'a'.repeat(32), /unsupported digest algorithm/],
    ['ghcr.io/a//b', /repository path/],
    ['ghcr.io/', /repository/]
  ])('rejects %j', (input, why) => {
    expect(() => parseReference(input)).toThrow(why)
    expect(() => parseReference(input)).toThrow(`"${input}"`)
  })

  it('formats and maps Docker Hub to its API host', () => {
    expect(formatReference(parseReference('alpine:3'))).toBe('docker.io/library/alpine:3')
    expect(apiHost('docker.io')).toBe('registry-1.docker.io')
    expect(apiHost('ghcr.io')).toBe('ghcr.io')
  })
})
