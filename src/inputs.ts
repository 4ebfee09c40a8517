// Every input is read and validated here, once. Errors name the input and the value.
import { readdirSync, statSync, type Dirent } from 'node:fs'
import { join } from 'node:path'
import { digestProblem } from './core/digest.js'
import { parsePlatform, type Platform } from './core/platform.js'
import {
  formatReference,
  isRegistryHost,
  parseReference,
  registryOf,
  type Reference
} from './core/reference.js'
import { UserError } from './errors.js'
import type { Credential } from './registry/credentials.js'
import type { MergeOptions, PlatformAnnotations } from './merge.js'
import type { SourceSpec } from './resolve.js'

/** What one image's merge reads: its tags and sources and how its index is made. */
export interface ImageInputs extends Required<
  Omit<MergeOptions, 'platforms' | 'requirePlatforms' | 'deadline' | 'dryRun'>
> {
  platforms?: Platform[]
  requirePlatforms?: Platform[]
  /** Annotation lines that do not apply to an index, for a note in the log. */
  ignoredAnnotations: string[]
}

/** What applies to a whole run, every image of a plan alike: dry-run and how to talk to registries. */
export interface RunInputs {
  dryRun: boolean
  maxConcurrency: number
  retries: number
  timeoutSeconds: number
  insecureRegistries: string[]
  credentials: Map<string, Credential>
  /** Token for ghcr.io when no other credential is known (the workflow's GITHUB_TOKEN). */
  githubToken: string
}

/** Everything one merge reads. */
export interface Inputs extends ImageInputs, RunInputs {}

/** What the workflow context adds with github-annotations: true. */
export interface GithubContext {
  serverUrl: string
  repository: string
  sha: string
}

/**
 * The workflow's repository and commit, from the variables the runner sets (what
 * @actions/github's context reads, without bundling Octokit for it).
 */
export function githubContext(env: NodeJS.ProcessEnv = process.env): GithubContext | undefined {
  if (!env.GITHUB_REPOSITORY || !env.GITHUB_SHA) return undefined
  return {
    serverUrl: env.GITHUB_SERVER_URL || 'https://github.com',
    repository: env.GITHUB_REPOSITORY,
    sha: env.GITHUB_SHA
  }
}

/** The action's inputs (action.yml; a unit test keeps the two in step). */
export const INPUT_NAMES = [
  'tags',
  'sources',
  'digests-dir',
  'source-repository',
  'format',
  'attestations',
  'platforms',
  'on-duplicate',
  'annotations',
  'github-annotations',
  'metadata-json',
  'require-platforms',
  'allow-extra-platforms',
  'append',
  'on-conflict',
  'copy-referrers',
  'preserve-digest',
  'dry-run',
  'max-concurrency',
  'retries',
  'timeout',
  'insecure-registries',
  'username',
  'password',
  'registry-auth',
  'github-token',
  'plan'
] as const

/** The inputs of a whole run, which a release plan sets for all its images (under defaults). */
export const RUN_INPUTS: readonly string[] = [
  'dry-run',
  'max-concurrency',
  'retries',
  'timeout',
  'insecure-registries',
  'username',
  'password',
  'registry-auth',
  'github-token'
]

/**
 * Environment variables that look like inputs but are not read: the runner keeps an input's
 * hyphens (INPUT_DRY-RUN), so INPUT_DRY_RUN, set by hand, would be silently ignored.
 */
export function misnamedInputs(env: NodeJS.ProcessEnv): string[] {
  return Object.keys(env)
    .filter((k) => k.startsWith('INPUT_') && k.slice(6).includes('_'))
    .map((k) => ({ k, name: k.slice(6).toLowerCase().replace(/_/g, '-') }))
    .filter(({ name }) => (INPUT_NAMES as readonly string[]).includes(name))
    .map(
      ({ k, name }) =>
        `${k} is ignored: the runner passes input ${name} as INPUT_${name.toUpperCase()}, with the hyphen`
    )
}

/** An input's value is wrong: the message names the input and the value. */
export class InputError extends UserError {}

/** Reads an input by name; the action passes @actions/core's getInput. */
export type InputReader = (name: string) => string

/** A list written as YAML or JSON, which the input does not take: the message says what it takes. */
function listFormatProblem(name: string, value: string): void {
  const v = value.trim()
  const json = v.startsWith('[') && v.endsWith(']')
  const yaml = v.split('\n').some((line) => /^\s*-\s+\S/.test(line))
  if (json || yaml) {
    throw new InputError(
      `input ${name}: write one reference per line (or separate them with commas), not a ${json ? 'JSON array' : 'YAML list'}: use a block scalar (${name}: |) with one reference on each line`
    )
  }
}

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
    throw new InputError(`input ${name}: ${(e as Error).message}`, { cause: e })
  }
}

/** Tags from docker/metadata-action's json output (input metadata-json, or its environment variable). */
function metadataTags(get: InputReader, env: NodeJS.ProcessEnv): string[] {
  const fromInput = get('metadata-json').trim()
  const name = fromInput ? 'input metadata-json' : 'DOCKER_METADATA_OUTPUT_JSON'
  const text = fromInput || env.DOCKER_METADATA_OUTPUT_JSON?.trim()
  if (!text) return []
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    throw new InputError(`${name}: not valid JSON (${(e as Error).message})`, { cause: e })
  }
  const tags = (doc as { tags?: unknown }).tags
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
    throw new InputError(
      `${name}: expected docker/metadata-action's json output with a "tags" list`
    )
  }
  return tags
}

function parseTags(get: InputReader, env: NodeJS.ProcessEnv): Reference[] {
  let values = parseList(get('tags'))
  if (values.length === 0) values = metadataTags(get, env)
  else if (get('metadata-json').trim()) {
    throw new InputError('inputs tags and metadata-json: set one of them (both give the tags)')
  }
  if (values.length === 0)
    throw new InputError(
      'input tags: no tag given (one or more full image references, e.g. ghcr.io/acme/app:1.2.3, or metadata-json)'
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

function bareDigest(
  name: string,
  value: string,
  repo: Reference,
  lookedUpIn: SourceSpec['lookedUpIn'],
  input = value
): SourceSpec {
  const problem = digestProblem(value)
  if (problem) throw new InputError(`input ${name}: "${value}" is not a valid digest: ${problem}`)
  const ref = { registry: repo.registry, repository: repo.repository, digest: value }
  return { input, ref, lookedUpIn }
}

/** The digests a digests-dir holds; an empty one is an error unless `others` sources were given. */
function digestsDir(
  dir: string,
  bareRepo: Reference,
  lookedUpIn: SourceSpec['lookedUpIn'],
  others: boolean
): SourceSpec[] {
  let entries: Dirent[]
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
    entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))
  } catch (e) {
    throw new InputError(`input digests-dir: cannot read "${dir}": ${(e as Error).message}`, {
      cause: e
    })
  }
  entries = entries.filter((d) => !d.name.startsWith('.'))
  const folders = entries.filter((d) => d.isDirectory()).map((d) => d.name)
  if (folders.length) {
    throw new InputError(
      `input digests-dir: "${dir}" holds folders (${folders.slice(0, 3).join(', ')}${folders.length > 3 ? ', ...' : ''}), not digest files: actions/download-artifact puts each artifact in a folder of its own unless merge-multiple: true is set`
    )
  }
  if (entries.length === 0 && !others) {
    throw new InputError(
      `input digests-dir: the folder "${dir}" is empty: the digest artifacts have not arrived (check that the build jobs uploaded them and that actions/download-artifact ran with the right pattern and merge-multiple: true)`
    )
  }
  return entries.map(({ name }) => {
    const digest = name.startsWith('sha256:') ? name : `sha256:${name}`
    if (digestProblem(digest)) {
      throw new InputError(
        `input digests-dir: file "${join(dir, name)}" is not named by a sha256 digest (expected 64 lowercase hex characters)`
      )
    }
    return bareDigest('digests-dir', digest, bareRepo, lookedUpIn, digest)
  })
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
  const lookedUpIn = repoInput ? 'source-repository' : 'first tag'
  listFormatProblem('sources', get('sources'))
  const out: SourceSpec[] = []
  for (const v of parseList(get('sources'))) {
    // How the artifact pattern names its files: a digest without its algorithm.
    if (/^[a-f0-9]{64}$/.test(v)) {
      throw new InputError(
        `input sources: "${v}" is a digest without its algorithm: did you mean sha256:${v}?`
      )
    }
    // A bare digest (sha256:..., or something that looks like one) resolves against source-repository.
    if (/^sha\d*:/i.test(v) && !/[/@]/.test(v)) {
      out.push(bareDigest('sources', v, bareRepo, lookedUpIn))
      continue
    }
    const r = ref('sources', v)
    if (r.digest)
      delete r.tag // the digest is what is fetched
    else r.tag ??= 'latest'
    out.push({ input: v, ref: r })
  }
  const dir = get('digests-dir').trim()
  if (dir) out.push(...digestsDir(dir, bareRepo, lookedUpIn, out.length > 0))
  if (out.length === 0)
    throw new InputError('input sources: no sources given (set sources and/or digests-dir)')
  return out
}

interface Annotations {
  index: Record<string, string>
  descriptor: Record<string, string>
  byPlatform: PlatformAnnotations[]
  ignored: string[]
}

/**
 * key=value lines for the index; docker/metadata-action's prefixed lines are accepted as it and
 * buildx write them: `index:` for the index, `manifest-descriptor:` for each image entry,
 * `manifest-descriptor[linux/arm64,...]:` for the entries of those platforms; other levels are
 * ignored.
 */
function parseAnnotations(value: string): Annotations {
  const out: Annotations = { index: {}, descriptor: {}, byPlatform: [], ignored: [] }
  for (const line of value.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue
    const i = line.indexOf('=')
    if (i <= 0) throw new InputError(`input annotations: "${line}" is not key=value`)
    let key = line.slice(0, i).trim()
    const val = line.slice(i + 1).trim()
    const prefix = /^([a-z-]+(?:\[[^\]]*\])?):(.+)$/.exec(key)
    let level = 'index'
    if (prefix && /^(index|manifest|manifest-descriptor|index-descriptor)(\[|$)/.test(prefix[1])) {
      level = prefix[1]
      key = prefix[2]
    }
    const platforms = /^manifest-descriptor\[(.*)\]$/.exec(level)?.[1]
    if (level === 'index') out.index[key] = val
    else if (level === 'manifest-descriptor') out.descriptor[key] = val
    else if (platforms !== undefined)
      out.byPlatform.push({ platforms: annotationPlatforms(platforms, line), key, value: val })
    else out.ignored.push(line)
  }
  return out
}

/** The platforms of a `manifest-descriptor[...]` line: one or more, comma-separated. */
function annotationPlatforms(list: string, line: string): Platform[] {
  const specs = list.split(',').map((s) => s.trim())
  return specs.map((spec) => {
    const p = spec ? parsePlatform(spec) : 'an empty platform'
    if (typeof p === 'string')
      throw new InputError(`input annotations: "${line}" names the platform "${spec}": ${p}`)
    return p
  })
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
    creds.set(registryOf(registry), { username, password })
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

function secret(value: string, onSecret: (s: string) => void): string {
  const v = value.trim()
  if (v) onSecret(v)
  return v
}

function platformList(get: InputReader, name: string): Platform[] | undefined {
  const values = parseList(get(name))
  if (values.length === 0) return undefined
  return values.map((v) => {
    const p = parsePlatform(v)
    if (typeof p === 'string') throw new InputError(`input ${name}: ${p}`)
    return p
  })
}

/** The inputs of one merge, image and run alike. */
export function parseInputs(
  get: InputReader,
  onSecret: (s: string) => void = () => {},
  env: NodeJS.ProcessEnv = process.env,
  github?: GithubContext
): Inputs {
  const image = parseImageInputs(get, env, github)
  return { ...image, ...parseRunInputs(get, image.tags, onSecret) }
}

/** The inputs of a run; username and password are for the registries of `tags`. */
export function parseRunInputs(
  get: InputReader,
  tags: Reference[],
  onSecret: (s: string) => void
): RunInputs {
  return {
    dryRun: bool(get, 'dry-run'),
    maxConcurrency: int(get, 'max-concurrency', 32, 1, 128),
    retries: int(get, 'retries', 10, 0, 20),
    timeoutSeconds: int(get, 'timeout', 900, 1, 21600),
    insecureRegistries: parseList(get('insecure-registries')).map((h) => {
      if (!isRegistryHost(h)) {
        throw new InputError(
          `input insecure-registries: "${h}" is not a registry host (write host or host:port, without scheme or path)`
        )
      }
      return h.toLowerCase()
    }),
    credentials: parseCredentials(get, tags, onSecret),
    githubToken: secret(get('github-token'), onSecret)
  }
}

/** The inputs of one image: its tags, its sources, and how its index is made. */
export function parseImageInputs(
  get: InputReader,
  env: NodeJS.ProcessEnv = process.env,
  github?: GithubContext
): ImageInputs {
  const tags = parseTags(get, env)
  const sources = parseSources(get, tags)
  // Like the tags, metadata-action's annotations come from its environment when not given.
  // A promotion changes nothing it was not asked to: metadata-action's variable is not read.
  const preserve = bool(get, 'preserve-digest')
  const annotations = parseAnnotations(
    get('annotations') || (preserve ? '' : (env.DOCKER_METADATA_OUTPUT_ANNOTATIONS ?? ''))
  )
  if (bool(get, 'github-annotations')) {
    if (!github) {
      throw new InputError(
        'input github-annotations: the workflow context (GITHUB_REPOSITORY, GITHUB_SHA) is not available'
      )
    }
    // Only values fixed by the commit: a rerun of the same commit gives the same digest.
    annotations.index['org.opencontainers.image.source'] ??=
      `${github.serverUrl}/${github.repository}`
    annotations.index['org.opencontainers.image.revision'] ??= github.sha
  }
  return {
    tags,
    sources,
    format: choice(get, 'format', ['auto', 'oci', 'docker'] as const, 'auto'),
    attestations: choice(
      get,
      'attestations',
      ['keep', 'strip', 'strip-provenance', 'referrers', 'referrers-strip-provenance'] as const,
      'keep'
    ),
    platforms: platformList(get, 'platforms'),
    onDuplicate: choice(get, 'on-duplicate', ['error', 'first', 'last'] as const, 'error'),
    annotations: annotations.index,
    descriptorAnnotations: annotations.descriptor,
    platformDescriptorAnnotations: annotations.byPlatform,
    ignoredAnnotations: annotations.ignored,
    requirePlatforms: platformList(get, 'require-platforms'),
    allowExtraPlatforms: bool(get, 'allow-extra-platforms'),
    append: bool(get, 'append'),
    onConflict: choice(get, 'on-conflict', ['fail', 'skip', 'warn'] as const, 'fail'),
    copyReferrers: bool(get, 'copy-referrers'),
    preserveDigest: preserve
  }
}
