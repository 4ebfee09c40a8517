// Image references with Docker's normalisation (github.com/distribution/reference):
// `alpine` -> docker.io/library/alpine, `localhost:5000/x`, ports, tags, digests, tag+digest.
import { UserError } from '../errors.js'
import { digestProblem } from './digest.js'

export const DOCKER_HUB = 'docker.io'

export interface Repository {
  /** Registry host as users write it, normalised (`docker.io`, `ghcr.io`, `localhost:5000`). */
  registry: string
  /** Repository path inside the registry (`library/alpine`). */
  repository: string
}

export interface Reference extends Repository {
  tag?: string
  digest?: string
}

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*'
const PATH_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`)
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN_RE = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`
)
const TAG_RE = /^[\w][\w.-]{0,127}$/

/** Not named ReferenceError, which would shadow the JavaScript global. */
export class ReferenceSyntaxError extends UserError {}

function fail(input: string, why: string): never {
  throw new ReferenceSyntaxError(`invalid image reference "${input}": ${why}`)
}

/** Splits a name into registry and path the way Docker decides whether the first part is a host. */
function splitDomain(name: string): [string, string] {
  const i = name.indexOf('/')
  const first = i === -1 ? '' : name.slice(0, i)
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    return [DOCKER_HUB, name]
  }
  return [first, name.slice(i + 1)]
}

export function parseReference(input: string): Reference {
  const s = input.trim()
  if (s === '') fail(input, 'it is empty')
  if (/\s/.test(s)) fail(input, 'it contains white space')
  if (/^[a-z0-9]+:\/\//i.test(s)) fail(input, 'leave out the scheme (write host/repo:tag)')

  let rest = s
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at !== -1) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    const problem = digestProblem(digest)
    if (problem) fail(input, problem)
  }
  let tag: string | undefined
  const lastColon = rest.lastIndexOf(':')
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1)
    rest = rest.slice(0, lastColon)
    if (!TAG_RE.test(tag)) fail(input, `"${tag}" is not a valid tag`)
  }
  if (rest === '') fail(input, 'the repository name is missing')
  let [registry, path] = splitDomain(rest)
  if (!DOMAIN_RE.test(registry)) fail(input, `"${registry}" is not a valid registry host`)
  registry = registryOf(registry)
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`
  if (!PATH_RE.test(path)) {
    const why =
      path.toLowerCase() !== path
        ? 'repository names must be lowercase'
        : 'repository path components are lowercase letters, digits and separators (. _ __ -)'
    fail(input, why)
  }
  if (registry.length + 1 + path.length > 255) fail(input, 'the name is longer than 255 characters')
  const ref: Reference = { registry, repository: path }
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) ref.digest = digest
  return ref
}

/**
 * The registry a host or URL names, as references name it: Docker Hub's aliases are docker.io
 * (`https://index.docker.io/v1/`, docker config's key, included).
 */
export function registryOf(hostOrUrl: string): string {
  // Host names are case-insensitive: LOCALHOST:5000 is localhost:5000, credentials included.
  const host = hostOrUrl
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase()
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/i

/** A registry (or host) on this machine: docker talks plain HTTP to it first. */
export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host)
}

/** True for a registry as users name it: host or host:port, no scheme or path. */
export function isRegistryHost(value: string): boolean {
  return DOMAIN_RE.test(value)
}

/** `registry/repository`, the key under which a repository is grouped. */
export function repoName(r: Repository): string {
  return `${r.registry}/${r.repository}`
}

export function sameRepository(a: Repository, b: Repository): boolean {
  return a.registry === b.registry && a.repository === b.repository
}

export function formatReference(r: Reference): string {
  let s = repoName(r)
  if (r.tag) s += `:${r.tag}`
  if (r.digest) s += `@${r.digest}`
  return s
}

/** The host to talk to: Docker Hub's API lives on registry-1.docker.io. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry
}

/** The repositories of `refs`, each once, in order. */
export function uniqueRepos(refs: Repository[]): Repository[] {
  const map = new Map<string, Repository>()
  for (const r of refs) map.set(repoName(r), { registry: r.registry, repository: r.repository })
  return [...map.values()]
}
