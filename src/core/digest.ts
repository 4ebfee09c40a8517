import { createHash } from 'node:crypto'

// Only sha256 is produced by registries in practice; sha512 is accepted where the spec allows it.
const DIGEST_RE = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/

export function sha256(data: Uint8Array | string): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex')
}

export function digestOf(data: Uint8Array, algorithm: string): string {
  return `${algorithm}:` + createHash(algorithm).update(data).digest('hex')
}

export function isDigest(value: string): boolean {
  return DIGEST_RE.test(value)
}

/** Explains why a string is not a usable digest, or returns undefined when it is one. */
export function digestProblem(value: string): string | undefined {
  if (isDigest(value)) return undefined
  const m = /^([A-Za-z0-9+._-]+):(.*)$/.exec(value)
  if (!m) return 'a digest is "sha256:" followed by 64 hex characters'
  const [, algorithm, hex] = m
  if (algorithm !== 'sha256' && algorithm !== 'sha512')
    return `unsupported digest algorithm "${algorithm}" (use sha256)`
  const want = algorithm === 'sha256' ? 64 : 128
  if (/[A-F]/.test(hex)) return 'digest hex must be lowercase'
  if (!/^[a-f0-9]*$/.test(hex)) return 'digest contains characters that are not hex'
  return `${algorithm} digest must have ${want} hex characters, got ${hex.length}`
}

/** Throws unless `data` hashes to `expected`: every manifest and blob fetched by digest goes through this. */
export function verifyDigest(data: Uint8Array, expected: string, what: string): void {
  if (!isDigest(expected)) {
    throw new Error(`${what}: ${JSON.stringify(expected)} is not a digest this action accepts`)
  }
  const algorithm = expected.split(':')[0]
  const actual = digestOf(data, algorithm)
  if (actual !== expected) {
    throw new Error(
      `${what}: content does not match its digest (asked for ${expected}, received content hashing to ${actual})`
    )
  }
}
