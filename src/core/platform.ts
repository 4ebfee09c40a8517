// OCI platforms: formatting, parsing user filters, and containerd-style normalised matching.
import { ManifestError } from './manifest.js'

export interface Platform {
  architecture: string
  os: string
  'os.version'?: string
  'os.features'?: string[]
  variant?: string
  features?: string[]
}

/** os, architecture and variant: letters, digits and `._-` (matching lowercases them, as containerd does). */
const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/
/** os.version and os.features: letters, digits and dots (`10.0.20348.2700`, `win32k`). */
const VERSION_RE = /^[A-Za-z0-9.]{1,128}$/

/**
 * Why a platform from a registry or an image cannot be used, or undefined. Platform fields are
 * printed and set as outputs, so they are held to their grammar rather than escaped.
 */
export function platformProblem(p: Partial<Record<keyof Platform, unknown>>): string | undefined {
  const bad = (field: string, value: unknown, what: string): string =>
    `its platform field ${field} is ${JSON.stringify(value)}, which is not ${what}`
  for (const field of ['os', 'architecture'] as const) {
    if (typeof p[field] !== 'string' || !NAME_RE.test(p[field]))
      return bad(field, p[field], 'letters, digits and ._-')
  }
  if (
    p.variant != null &&
    p.variant !== '' &&
    (typeof p.variant !== 'string' || !NAME_RE.test(p.variant))
  )
    return bad('variant', p.variant, 'letters, digits and ._-')
  const version = p['os.version']
  if (
    version != null &&
    version !== '' &&
    (typeof version !== 'string' || !VERSION_RE.test(version))
  )
    return bad('os.version', version, 'letters, digits and dots')
  const features = p['os.features']
  if (
    features != null &&
    (!Array.isArray(features) ||
      !features.every((f) => typeof f === 'string' && VERSION_RE.test(f)))
  )
    return bad('os.features', features, 'a list of letters, digits and dots')
  return undefined
}

/** `linux/arm64/v8`, as users write it and as the `platforms` output lists it. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

/** `windows/amd64:10.0.20348.2700`: the platform with os.version, used where Windows builds differ. */
export function formatPlatformFull(p: Platform): string {
  const base = formatPlatform(p)
  return p['os.version'] ? `${base}:${p['os.version']}` : base
}

export function isUnknownPlatform(p: Platform | undefined): boolean {
  return !p || (p.os === 'unknown' && p.architecture === 'unknown')
}

/** containerd's platforms.Normalize for the parts that matter to matching. */
export function normalizePlatform(p: Platform): Platform {
  let os = p.os.toLowerCase()
  if (os === 'macos') os = 'darwin'
  let architecture = p.architecture.toLowerCase()
  let variant = p.variant?.toLowerCase() ?? ''
  switch (architecture) {
    case 'i386':
      architecture = '386'
      variant = ''
      break
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      architecture = 'amd64'
      if (variant === 'v1') variant = ''
      break
    case 'aarch64':
    case 'arm64':
      architecture = 'arm64'
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') variant = ''
      break
    case 'armhf':
      architecture = 'arm'
      variant = 'v7'
      break
    case 'armel':
      architecture = 'arm'
      variant = 'v6'
      break
    case 'arm':
      if (variant === '' || variant === '7') variant = 'v7'
      else if (/^[5-8]$/.test(variant)) variant = `v${variant}`
      break
  }
  const out: Platform = { os, architecture }
  if (variant) out.variant = variant
  if (p['os.version']) out['os.version'] = p['os.version']
  return out
}

/** A key under which two images count as the same platform (duplicates, append replacement). */
export function platformKey(p: Platform): string {
  return formatPlatformFull(normalizePlatform(p))
}

/**
 * Parses a filter such as `linux/arm64`, `linux/arm/v7` or `windows/amd64:10.0.20348`.
 * Returns an error message instead of throwing so callers can name the input.
 */
export function parsePlatform(spec: string): Platform | string {
  const s = spec.trim()
  let osVersion: string | undefined
  let main = s
  const colon = s.indexOf(':')
  if (colon !== -1) {
    osVersion = s.slice(colon + 1)
    main = s.slice(0, colon)
  }
  const parts = main.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => !/^[A-Za-z0-9_.-]+$/.test(x))) {
    return `"${spec}" is not a platform (expected os/arch or os/arch/variant, e.g. linux/arm64)`
  }
  const p: Platform = { os: parts[0], architecture: parts[1] }
  if (parts[2]) p.variant = parts[2]
  if (osVersion) p['os.version'] = osVersion
  return p
}

/** True when `image` satisfies `filter`; a filter without os.version matches any version. */
export function platformMatches(filter: Platform, image: Platform): boolean {
  const f = normalizePlatform(filter)
  const i = normalizePlatform(image)
  if (f.os !== i.os || f.architecture !== i.architecture) return false
  if ((f.variant ?? '') !== (i.variant ?? '')) return false
  if (f['os.version'] && !(i['os.version'] ?? '').startsWith(f['os.version'])) return false
  return true
}

/** Reads the platform of an image from its config blob (os, architecture, variant, os.version, os.features). */
export function platformFromConfig(config: Uint8Array, where: string): Platform {
  const p = configPlatform(config, where)
  if (p === 'not json') throw new ManifestError(`${where}: the image config is not valid JSON`)
  if (!p) {
    throw new ManifestError(
      `${where}: the image config names no os/architecture, so it is not a runnable image`
    )
  }
  return p
}

/**
 * The platform a config names; undefined when it names none, 'not json' when it is not JSON (an
 * artifact's config, as oras writes). A platform it names but that is malformed throws.
 */
export function configPlatform(
  config: Uint8Array,
  where: string
): Platform | undefined | 'not json' {
  let doc: Record<string, unknown>
  try {
    doc = JSON.parse(Buffer.from(config).toString('utf8')) as Record<string, unknown>
  } catch {
    return 'not json'
  }
  if (typeof doc !== 'object' || doc === null) return undefined
  const { os, architecture, variant } = doc
  if (typeof os !== 'string' || typeof architecture !== 'string' || !os || !architecture)
    return undefined
  const p: Platform = { architecture, os }
  if (doc['os.version'] != null && doc['os.version'] !== '')
    p['os.version'] = doc['os.version'] as string
  const features = doc['os.features']
  if (Array.isArray(features) && features.length) p['os.features'] = features as string[]
  if (variant != null && variant !== '') p.variant = variant as string
  const problem = platformProblem(p)
  if (problem) throw new ManifestError(`${where}: the image config is not usable: ${problem}`)
  return p
}

/**
 * The `platforms` output: `os/arch[/variant]`, with `:os.version` where two images would
 * otherwise read the same (Windows builds, as in Docker Hub's hello-world list).
 */
export function platformNames(platforms: Platform[]): string[] {
  const short = platforms.map(formatPlatform)
  return platforms.map((p, i) =>
    short.indexOf(short[i]) !== short.lastIndexOf(short[i]) ? formatPlatformFull(p) : short[i]
  )
}
