import { describe, expect, it } from '@jest/globals'
import {
  formatPlatform,
  formatPlatformFull,
  normalizePlatform,
  parsePlatform,
  platformFromConfig,
  platformKey,
  platformMatches,
  type Platform
} from '../../src/core/platform.js'

const p = (s: string): Platform => parsePlatform(s) as Platform

describe('platforms', () => {
  it('normalises like containerd', () => {
    expect(normalizePlatform(p('linux/aarch64/v8'))).toEqual({ os: 'linux', architecture: 'arm64' })
    expect(normalizePlatform(p('linux/arm'))).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7'
    })
    expect(normalizePlatform(p('linux/armhf'))).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7'
    })
    expect(normalizePlatform(p('linux/x86_64'))).toEqual({ os: 'linux', architecture: 'amd64' })
    expect(normalizePlatform(p('linux/arm/6'))).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v6'
    })
  })

  it('matches filters with variant defaults', () => {
    expect(platformMatches(p('linux/arm64'), p('linux/arm64/v8'))).toBe(true)
    expect(platformMatches(p('linux/arm'), p('linux/arm/v7'))).toBe(true)
    expect(platformMatches(p('linux/arm/v6'), p('linux/arm/v7'))).toBe(false)
    expect(platformMatches(p('linux/amd64'), p('linux/arm64'))).toBe(false)
    expect(
      platformMatches(p('windows/amd64'), {
        os: 'windows',
        architecture: 'amd64',
        'os.version': '10.0.20348.2700'
      })
    ).toBe(true)
    expect(
      platformMatches(p('windows/amd64:10.0.17763'), {
        os: 'windows',
        architecture: 'amd64',
        'os.version': '10.0.20348.2700'
      })
    ).toBe(false)
  })

  it('formats with and without os.version', () => {
    const w: Platform = { os: 'windows', architecture: 'amd64', 'os.version': '10.0.20348.2700' }
    expect(formatPlatform(w)).toBe('windows/amd64')
    expect(formatPlatformFull(w)).toBe('windows/amd64:10.0.20348.2700')
    expect(platformKey(p('linux/arm64/v8'))).toBe(platformKey(p('linux/arm64')))
  })

  it('rejects malformed platform filters', () => {
    expect(parsePlatform('amd64')).toMatch(/not a platform/)
    expect(parsePlatform('linux/arm/v7/x')).toMatch(/not a platform/)
  })

  it('reads the platform from a config', () => {
    const cfg = Buffer.from(
      JSON.stringify({
        os: 'windows',
        architecture: 'amd64',
        'os.version': '10.0.1',
        'os.features': ['win32k']
      })
    )
    expect(platformFromConfig(cfg, 'x')).toEqual({
      os: 'windows',
      architecture: 'amd64',
      'os.version': '10.0.1',
      'os.features': ['win32k']
    })
    expect(() => platformFromConfig(Buffer.from('{}'), 'src x')).toThrow(
      /src x: .*no os\/architecture/
    )
    expect(() => platformFromConfig(Buffer.from('nope'), 'src x')).toThrow(/not valid JSON/)
  })
})
