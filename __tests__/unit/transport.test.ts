import { describe, expect, it } from '@jest/globals'
import { parseChallenges } from '../../src/registry/challenge.js'
import { retryAfterMs } from '../../src/registry/retry.js'
import { dockerConfigCredential } from '../../src/registry/credentials.js'

describe('WWW-Authenticate', () => {
  it('parses Bearer challenges with quoted and bare params', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'
      )
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull'
        }
      }
    ])
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } }
    ])
    expect(parseChallenges(undefined)).toEqual([])
  })
})

describe('Retry-After', () => {
  it('reads seconds and HTTP dates', () => {
    expect(retryAfterMs('3')).toBe(3000)
    const now = Date.parse('2026-01-01T00:00:00Z')
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000)
    expect(retryAfterMs('soon')).toBeUndefined()
  })
})

describe('docker config', () => {
  it('reads auth entries, with Docker Hub under its historical key', () => {
    const cfg = {
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('me:secret').toString('base64') },
        'ghcr.io': { username: 'u', password: 'p' }
      }
    }
    expect(dockerConfigCredential(cfg, 'docker.io')).toEqual({ username: 'me', password: 'secret' })
    expect(dockerConfigCredential(cfg, 'ghcr.io')).toEqual({ username: 'u', password: 'p' })
    expect(dockerConfigCredential(cfg, 'quay.io')).toBeUndefined()
  })
})
