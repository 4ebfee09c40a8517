// Scoped docker configs, and the one buildx would choose for a token request (credentials.ts uses
// it before the unscoped docker config). docker/login-action's `scope` input (v3.7.0 on) runs
// `docker login` with DOCKER_CONFIG set to ${BUILDX_CONFIG:-$DOCKER_CONFIG/buildx}/config/<registry>[/<repository>][@<actions>],
// Docker Hub's folder being registry-1.docker.io (login-action src/context.ts scopeToConfigDir,
// actions-toolkit src/buildx/buildx.ts Buildx.configDir). Buildx reads every config.json under that
// folder and picks one per token request (buildx util/dockerutil/dockerconfig/configprovider.go;
// https://docs.docker.com/build/building/registry-auth/): the repository must be the request's
// repository exactly, the actions after `@` must all be among the request's, a config naming a
// repository beats one that names none, and more actions beat fewer.
import { readdirSync, readFileSync, type Dirent } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { registryOf } from '../core/reference.js'
import { UserError } from '../errors.js'
import type { DockerConfig } from './credentials.js'

/** The docker config folder: $DOCKER_CONFIG, else ~/.docker (where config.json is read too). */
export function dockerConfigDir(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker')
}

/** One docker config that is for some repositories or token actions of a registry only. */
export interface ScopedConfig {
  /** Its config.json. */
  file: string
  /** The registry, as references name it (Docker Hub's folder registry-1.docker.io is docker.io). */
  registry: string
  /** The one repository it is for; undefined: any repository of the registry. */
  repository?: string
  /** The token actions it is for (`@pull,push`); empty: any request. */
  actions: ReadonlySet<string>
}

/** Where buildx keeps its configuration: $BUILDX_CONFIG, else the docker config folder's buildx. */
export function buildxConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.BUILDX_CONFIG || join(dockerConfigDir(env), 'buildx'))
}

/**
 * What a folder under `<buildx>/config` is for: `<registry>[/<repository>][@<action>,...]`, as
 * buildx reads it (everything after the first `@` is the action list). Undefined without a registry.
 */
export function parseScopedConfigKey(key: string): Omit<ScopedConfig, 'file'> | undefined {
  const at = key.indexOf('@')
  const path = at < 0 ? key : key.slice(0, at)
  const actions = new Set(
    (at < 0 ? '' : key.slice(at + 1))
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean)
  )
  const slash = path.indexOf('/')
  const host = slash < 0 ? path : path.slice(0, slash)
  const repository = slash < 0 ? '' : path.slice(slash + 1)
  if (!host || host === '.' || host === '..') return undefined
  return { registry: registryOf(host), ...(repository ? { repository } : {}), actions }
}

/** Deep enough for any repository name (255 characters at most), not for a loop of folders. */
const MAX_SCOPED_DEPTH = 64

/**
 * Every scoped docker config under `<buildx>/config`, sorted by path. Folders that cannot be
 * listed are passed over, as are symbolic links to folders (buildx does not follow them either);
 * the config.json files are read only when one is chosen.
 */
export function readScopedConfigs(env: NodeJS.ProcessEnv = process.env): ScopedConfig[] {
  const out: ScopedConfig[] = []
  const walk = (dir: string, key: string[]): void => {
    if (key.length > MAX_SCOPED_DEPTH) return
    let entries: Dirent[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, e.name)
      if (e.isDirectory()) walk(path, [...key, e.name])
      else if (e.name === 'config.json' && key.length) {
        const parsed = parseScopedConfigKey(key.join('/'))
        if (parsed) out.push({ file: path, ...parsed })
      }
    }
  }
  walk(join(buildxConfigDir(env), 'config'), [])
  return out
}

/** Token scopes (`repository:acme/app:pull,push`, several to a string allowed) by resource. */
function parseScopes(scopes: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>()
  for (const scope of scopes.flatMap((s) => s.split(/\s+/)).filter(Boolean)) {
    const first = scope.indexOf(':')
    const last = scope.lastIndexOf(':')
    const resource = first < 0 || first === last ? scope : scope.slice(0, last)
    let actions = out.get(resource)
    if (!actions) out.set(resource, (actions = new Set()))
    if (first >= 0 && first !== last)
      for (const a of scope.slice(last + 1).split(',')) if (a) actions.add(a)
  }
  return out
}

/**
 * Whether `c` is for a request of `actions` on `resource`, as buildx decides; and one thing more:
 * a request that pushes takes a config limited to some actions only when push is among them, so
 * that read-only credentials (`@pull`) are not sent to push with.
 */
function covers(c: ScopedConfig, resource: string, actions: ReadonlySet<string>): boolean {
  if (c.repository !== undefined && resource !== `repository:${c.repository}`) return false
  for (const a of c.actions) if (!actions.has(a)) return false
  return !(actions.has('push') && c.actions.size > 0 && !c.actions.has('push'))
}

/** Buildx's preference: a config for the repository first, then the one for more actions. */
function preference(a: ScopedConfig, b: ScopedConfig): number {
  return (
    Number(b.repository !== undefined) - Number(a.repository !== undefined) ||
    b.actions.size - a.actions.size ||
    (a.file < b.file ? -1 : a.file > b.file ? 1 : 0)
  )
}

/**
 * The scoped config to use for a token on `registry` covering `scopes`; undefined: the unscoped
 * docker config. One repository in the request: buildx's choice. Several (this action asks one
 * token for the target and the sources of a registry): the choice for the repositories pushed to
 * when they agree, else for all of them when they agree, else none. Without scopes: the
 * registry's scoped config when it has exactly one.
 */
export function selectScopedConfig(
  configs: readonly ScopedConfig[],
  registry: string,
  scopes?: readonly string[]
): ScopedConfig | undefined {
  const mine = configs.filter((c) => c.registry === registry)
  if (mine.length === 0) return undefined
  const resources = parseScopes(scopes ?? [])
  if (resources.size === 0) return mine.length === 1 ? mine[0] : undefined
  const choices = [...resources].map(([resource, actions]) => ({
    push: actions.has('push'),
    config: mine.filter((c) => covers(c, resource, actions)).sort(preference)[0]
  }))
  const decisive = choices.some((c) => c.push) ? choices.filter((c) => c.push) : choices
  const first = decisive[0].config
  return decisive.every((c) => c.config === first) ? first : undefined
}

/** A scoped config.json; the error names the file, never what it holds. */
export function loadScopedConfig(c: ScopedConfig): DockerConfig {
  const fail = (why: string): UserError =>
    new UserError(
      `the scoped docker config ${c.file} (credentials for ${describeScope(c)}, as docker/login-action's scope input writes them) ${why}: fix or remove it`
    )
  let text: string
  try {
    text = readFileSync(c.file, 'utf8')
  } catch (e) {
    throw fail(`could not be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    // The parser's message quotes the text, which may hold a secret.
    throw fail('is not valid JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw fail('is not a JSON object')
  return parsed
}

/** `ghcr.io/acme/app@push`: what a scoped config is for, in the form of the input that made it. */
export function describeScope(c: Omit<ScopedConfig, 'file'>): string {
  const actions = [...c.actions].join(',')
  return `${c.registry}${c.repository ? `/${c.repository}` : ''}${actions ? `@${actions}` : ''}`
}
