// What the action prints of registry and image content: one line, no workflow command, and for
// the summary no HTML; platform fields and digests held to their grammar.
import { describe, expect, it } from '@jest/globals'
import { escapeHtml, inert } from '../../src/core/inert.js'
import { checkDescriptor, ManifestError } from '../../src/core/manifest.js'
import { platformFromConfig, platformProblem } from '../../src/core/platform.js'

describe('inert', () => {
  it.each([
    ['1\n::stop-commands::x', '1\\x0a::stop-commands::x'],
    ['::set-output name=a::b', '\\x3a:set-output name=a::b'],
    ['a ##[error]b', 'a #\\x23[error]b'],
    [' \u00a0 ::stop-commands::x', ' \u00a0 \\x3a:stop-commands::x'],
    ['cr\rlf\u2028sep\u0085', 'cr\\x0dlf\\u2028sep\\x85'],
    ['plain text: linux/amd64 sha256:ab', 'plain text: linux/amd64 sha256:ab']
  ])('%j -> %j', (input, output) => {
    expect(inert(input)).toBe(output)
    expect(inert(input)).not.toMatch(/[\n\r]/)
  })

  it('escapes HTML for the summary', () => {
    expect(escapeHtml('<img src=x onerror="alert(1)">&')).toBe(
      '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;'
    )
  })
})

describe('platforms from registries and images', () => {
  it('accepts the values real images carry', () => {
    expect(platformProblem({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBeUndefined()
    expect(
      platformProblem({
        os: 'windows',
        architecture: 'amd64',
        'os.version': '10.0.20348.2700',
        'os.features': ['win32k']
      })
    ).toBeUndefined()
    expect(platformProblem({ os: 'unknown', architecture: 'unknown', variant: '' })).toBeUndefined()
  })

  it.each([
    [{ os: 'linux', architecture: 'amd64', 'os.version': '1\n::stop-commands::x' }, 'os.version'],
    [{ os: 'linux', architecture: 'arm', variant: 'v7\n::x' }, 'variant'],
    [{ os: 'linux os', architecture: 'amd64' }, 'os'],
    [{ os: 'linux', architecture: '<img src=x>' }, 'architecture'],
    [{ os: 'windows', architecture: 'amd64', 'os.features': ['a b'] }, 'os.features']
  ])('refuses %j, naming %s', (p, field) => {
    expect(platformProblem(p)).toContain(`platform field ${field} is `)
  })

  it('refuses an image config with such a field, naming the source', () => {
    const config = Buffer.from(
      JSON.stringify({ os: 'linux', architecture: 'amd64', variant: 'a\nb' })
    )
    expect(() => platformFromConfig(config, 'source x')).toThrow(
      /^source x: the image config is not usable: its platform field variant is "a\\nb"/
    )
  })
})

describe('descriptor digests', () => {
  const entry = (digest: string) => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest,
    size: 1
  })

  it.each([
    'sha256:../../other/manifests/latest',
    'md5:d41d8cd98f00b204e9800998ecf8427e',
    'sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709',
    'sha256:' + 'A'.repeat(64)
  ])('refuses %s, naming the source and the entry', (digest) => {
    expect(() => checkDescriptor(entry(digest), 'source x: entry 2')).toThrow(ManifestError)
    expect(() => checkDescriptor(entry(digest), 'source x: entry 2')).toThrow(
      /^source x: entry 2 has the digest .* which is refused/
    )
  })

  it('accepts sha256 and sha512', () => {
    expect(() => checkDescriptor(entry('sha256:' + 'a'.repeat(64)), 'x')).not.toThrow()
    expect(() => checkDescriptor(entry('sha512:' + 'b'.repeat(128)), 'x')).not.toThrow()
  })
})
