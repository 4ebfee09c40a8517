// Every input is read and validated here, once. Errors name the input and the value.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { AttestationMode, OnDuplicate } from './core/children.js'
import { digestProblem } from './core/digest.js'
import type { IndexFormat } from './core/index-builder.js'
import { parsePlatform, type Platform } from './core/platform.js'
import { formatReference, parseReference, type Reference } from './core/reference.js'
import type { Credential } from './registry/credentials.js'
import type { SourceSpec } from './resolve.js'

export interface Inputs {
  tags: Reference[]
  sources: SourceSpec[]
  format: IndexFormat
  attestations: AttestationMode
  platforms?: Platform[]
  onDuplicate: OnDuplicate
  annotations: Record<string, string>
  dryRun: boolean
  maxConcurrency: number
  retries: number
  timeoutSeconds: number
  insecureRegistries: string[]
  credentials: Map<string, Credential>
  /** Token for ghcr.io when no other credential is known (the workflow's GITHUB_TOKEN). */
  githubToken: string
}

export class InputError extends Error {}

/** Reads an input by name; the action passes @actions/core's getInput. */
export type InputReader = (name: string) => string

/** Newline- or comma-separated list, as the docker actions take lists. */
export function parseList(value: string): string[] {
  return value
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.startsWith('#'))
}

function choice<T extends string>(
  get: InputReader,
  name: string,
  allowed: readonly T[],
  dflt: T
): T {
  const v = get(name).trim()
  if (v === '') return dflt
  if (!(allowed as readonly string[]).includes(v)) {
    throw new InputError(`input ${name}: "${v}" is not one of ${allowed.join(', ')}`)
  }
  return v as T
}

function bool(get: InputReader, name: string): boolean {
  const v = get(name).trim()
  if (v === '' || /^(false|False|FALSE)$/.test(v)) return false
  if (/^(true|True|TRUE)$/.test(v)) return true
  throw new InputError(`input ${name}: "${v}" is not a boolean (use true or false)`)
}

function int(get: InputReader, name: string, dflt: number, min: number, max: number): number {
  const v = get(name).trim()
  if (v === '') return dflt
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
    throw new InputError(`input ${name}: "${v}" is not a whole number from ${min} to ${max}`)
  }
  return Number(v)
}

function ref(name: string, value: string): Reference {
  try {
    return parseReference(value)
  } catch (e) {
    throw new InputError(`input ${name}: ${(e as Error).message}`)
  }
}

function parseTags(get: InputReader): Reference[] {
  const values = parseList(get('tags'))
  if (values.length === 0)
    throw new InputError(
      'input tags: no tag given (one or more full image references, e.g. ghcr.io/acme/app:1.2.3)'
    )
  const seen = new Set<string>()
  const out: Reference[] = []
  for (const v of values) {
    const r = ref('tags', v)
    if (r.digest) {
      throw new InputError(
        `input tags: "${v}" has a digest; tags must be tag references (the index digest is computed and given as the digest output)`
      )
    }
    r.tag ??= 'latest'
    const key = formatReference(r)
    if (seen.has(key)) continue
    seen.add(key)
    out.push(r)
  }
  return out
}

function bareDigest(name: string, value: string, repo: Reference, input = value): SourceSpec {
  const problem = digestProblem(value)
  if (problem) throw new InputError(`input ${name}: "${value}" is not a valid digest: ${problem}`)
  return { input, ref: { registry: repo.registry, repository: repo.repository, digest: value } }
}

function parseSources(get: InputReader, tags: Reference[]): SourceSpec[] {
  const repoInput = get('source-repository').trim()
  let bareRepo: Reference = tags[0]
  if (repoInput) {
    bareRepo = ref('source-repository', repoInput)
    if (bareRepo.tag || bareRepo.digest) {
      throw new InputError(
        `input source-repository: "${repoInput}" must be a repository without tag or digest`
      )
    }
  }
  const out: SourceSpec[] = []
  for (const v of parseList(get('sources'))) {
    // A bare digest (sha256:..., or something that looks like one) resolves against source-repository.
    if (/^sha\d*:/i.test(v) && !/[/@]/.test(v)) {
      out.push(bareDigest('sources', v, bareRepo))
      continue
    }
    const r = ref('sources', v)
    if (r.digest)
      delete r.tag // the digest is what is fetched
    else r.tag ??= 'latest'
    out.push({ input: v, ref: r })
  }
  const dir = get('digests-dir').trim()
  if (dir) {
    let names: string[]
    try {
      if (!statSync(dir).isDirectory()) throw new Error('not a directory')
      names = readdirSync(dir).sort()
    } catch (e) {
      throw new InputError(`input digests-dir: cannot read "${dir}": ${(e as Error).message}`)
    }
    for (const n of names) {
      if (n.startsWith('.')) continue
      const digest = n.startsWith('sha256:') ? n : `sha256:${n}`
      if (digestProblem(digest)) {
        throw new InputError(
          `input digests-dir: file "${join(dir, n)}" is not named by a sha256 digest (expected 64 lowercase hex characters)`
        )
      }
      out.push(bareDigest('digests-dir', digest, bareRepo, digest))
    }
  }
  if (out.length === 0)
    throw new InputError('input sources: no sources given (set sources and/or digests-dir)')
  return out
}

function parseAnnotations(value: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of value.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue
    const i = line.indexOf('=')
    if (i <= 0) throw new InputError(`input annotations: "${line}" is not key=value`)
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim()
  }
  return out
}

function parseCredentials(
  get: InputReader,
  tags: Reference[],
  onSecret: (s: string) => void
): Map<string, Credential> {
  const creds = new Map<string, Credential>()
  // registry-auth lines first, so that username/password win for the tags' registries.
  for (const line of get('registry-auth')
    .split('\n')
    .map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue
    const m = /^([^=\s]+)=([^:]+):(.+)$/.exec(line)
    if (!m) {
      // Never echo the line: it holds a secret.
      throw new InputError(
        'input registry-auth: each line must be registry=username:password (a line does not match; its content is not shown because it may hold a secret)'
      )
    }
    const [, registry, username, password] = m
    onSecret(password)
    creds.set(normalizeRegistry(registry), { username, password })
  }
  const username = get('username').trim()
  const password = get('password')
  if (password) onSecret(password)
  if (username || password) {
    if (!username || !password)
      throw new InputError('inputs username and password: set both or neither')
    for (const t of tags) creds.set(t.registry, { username, password })
  }
  return creds
}

/** The registry part of a reference as users write it (docker.io for Docker Hub's aliases). */
function normalizeRegistry(host: string): string {
  const h = host.replace(/^https?:\/\//, '').replace(/\/.*$/, '')
  return ['index.docker.io', 'registry-1.docker.io'].includes(h) ? 'docker.io' : h
}

function secret(value: string, onSecret: (s: string) => void): string {
  const v = value.trim()
  if (v) onSecret(v)
  return v
}

export function parseInputs(get: InputReader, onSecret: (s: string) => void = () => {}): Inputs {
  const tags = parseTags(get)
  const credentials = parseCredentials(get, tags, onSecret)
  const sources = parseSources(get, tags)
  let platforms: Platform[] | undefined
  const pv = parseList(get('platforms'))
  if (pv.length) {
    platforms = pv.map((s) => {
      const p = parsePlatform(s)
      if (typeof p === 'string') throw new InputError(`input platforms: ${p}`)
      return p
    })
  }
  return {
    tags,
    sources,
    format: choice(get, 'format', ['auto', 'oci', 'docker'] as const, 'auto'),
    attestations: choice(get, 'attestations', ['keep', 'strip'] as const, 'keep'),
    platforms,
    onDuplicate: choice(get, 'on-duplicate', ['error', 'first', 'last'] as const, 'error'),
    annotations: parseAnnotations(get('annotations')),
    dryRun: bool(get, 'dry-run'),
    maxConcurrency: int(get, 'max-concurrency', 8, 1, 64),
    retries: int(get, 'retries', 4, 0, 20),
    timeoutSeconds: int(get, 'timeout', 60, 1, 3600),
    insecureRegistries: parseList(get('insecure-registries')),
    credentials,
    githubToken: secret(get('github-token'), onSecret)
  }
}
