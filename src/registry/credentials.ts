// Where credentials come from, in this order: the action's inputs, then a scoped docker config
// (docker/login-action's `scope` input, read as buildx reads it), then the docker config that
// login actions write (credHelpers, credsStore, auths), then the workflow's GITHUB_TOKEN for ghcr.io.
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, type Dirent } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { DOCKER_HUB, registryOf } from '../core/reference.js'
import { UserError } from '../errors.js'

export type Credential =
  { username: string; password: string } | { identityToken: string; username?: string }

export interface CredentialStore {
  /**
   * The credential for `registry`. `scopes` are the token scopes the credential will be used for,
   * as a token request names them (`repository:acme/app:pull,push`): they choose among scoped
   * docker configs. Without them a scoped config is used only when it is the registry's only one.
   */
  get(registry: string, scopes?: readonly string[]): Promise<Credential | undefined>
}

export interface DockerConfig {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string }
  >
  /** Registry -> helper name: `docker-credential-<name>` is run for that registry. */
  credHelpers?: Record<string, string>
  /** Helper for every registry credHelpers does not name. */
  credsStore?: string
}

/** The server address docker keys a registry's credentials by (Docker Hub keeps its v1 URL). */
export function serverAddress(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry
}

/** The entry for `registry`: under its own key first, then under any key naming the same host. */
function lookup<T>(map: Record<string, T> | undefined, registry: string): T | undefined {
  if (!map) return undefined
  if (Object.hasOwn(map, serverAddress(registry))) return map[serverAddress(registry)]
  for (const [key, value] of Object.entries(map)) if (registryOf(key) === registry) return value
  return undefined
}

/** The docker config folder: $DOCKER_CONFIG, else ~/.docker. */
function dockerConfigDir(env: NodeJS.ProcessEnv): string {
  return env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker')
}

export function readDockerConfig(env: NodeJS.ProcessEnv = process.env): DockerConfig {
  const dir = dockerConfigDir(env)
  try {
    return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as DockerConfig
  } catch {
    return {}
  }
}

/** Credentials from the docker config's `auths` entry for `registry`. */
export function dockerConfigCredential(
  config: DockerConfig,
  registry: string
): Credential | undefined {
  const entry = lookup(config.auths, registry)
  if (!entry) return undefined
  let { username, password } = entry
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
    const i = decoded.indexOf(':')
    if (i > 0) {
      username = decoded.slice(0, i)
      password = decoded.slice(i + 1).replace(/\0+$/, '')
    }
  }
  if (entry.identitytoken) return { identityToken: entry.identitytoken, username }
  if (username && password) return { username, password }
  return undefined
}

/** Runs `docker-credential-<helper> get` for a registry; undefined when it knows no credentials. */
export type HelperRunner = (helper: string, registry: string) => Promise<Credential | undefined>

const HELPER_TIMEOUT_MS = 20_000

export function runCredentialHelper(
  helper: string,
  registry: string,
  timeoutMs = HELPER_TIMEOUT_MS
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`
  const fail = (why: string): Error =>
    new Error(`credential helper ${program} failed for registry ${registry}: ${why}`)
  // The helper is a third-party program: it gets the environment minus the action's inputs.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('INPUT_'))
  )
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      ['get'],
      { timeout: timeoutMs, maxBuffer: 1024 * 1024, env },
      (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { killed?: boolean }
          if (e.code === 'ENOENT') return reject(fail(`${program} is not on PATH`))
          if (e.killed) return reject(fail(`no answer within ${timeoutMs / 1000} s`))
          // Helpers report errors as a message on stdout; no credentials is not an error.
          const message = `${stdout} ${stderr}`.trim()
          if (/credentials not found/i.test(message)) return resolve(undefined)
          // What it printed is not quoted: a helper that fails half-way may have printed a secret.
          return reject(
            fail(
              `it exited with code ${String(e.code)} (its output is not shown: it may hold a secret)`
            )
          )
        }
        let answer: { Username?: string; Secret?: string }
        try {
          answer = JSON.parse(stdout) as typeof answer
        } catch {
          // Not quoted: the output may hold the secret.
          return reject(fail('its answer is not JSON'))
        }
        if (!answer.Secret) return resolve(undefined)
        // Docker's convention: the user name "<token>" marks the secret as an identity token.
        if (answer.Username === '<token>') return resolve({ identityToken: answer.Secret })
        resolve({ username: answer.Username ?? '', password: answer.Secret })
      }
    )
    child.stdin?.on('error', () => {}) // a helper that exits without reading its input
    child.stdin?.end(serverAddress(registry))
  })
}

/** The docker config's credentials for `registry`, as docker finds them. */
export async function configCredential(
  config: DockerConfig,
  registry: string,
  runHelper: HelperRunner = runCredentialHelper
): Promise<Credential | undefined> {
  const helper = lookup(config.credHelpers, registry) || config.credsStore
  const fromHelper = helper ? await runHelper(helper, registry) : undefined
  // Docker stops at a helper that knows nothing; an auths entry with real credentials is used.
  return fromHelper ?? dockerConfigCredential(config, registry)
}

// Scoped docker configs. docker/login-action's `scope` input (v3.7.0 on) runs `docker login` with
// DOCKER_CONFIG set to ${BUILDX_CONFIG:-$DOCKER_CONFIG/buildx}/config/<registry>[/<repository>][@<actions>],
// Docker Hub's folder being registry-1.docker.io (login-action src/context.ts scopeToConfigDir,
// actions-toolkit src/buildx/buildx.ts Buildx.configDir). Buildx reads every config.json under that
// folder and picks one per token request (buildx util/dockerutil/dockerconfig/configprovider.go;
// https://docs.docker.com/build/building/registry-auth/): the repository must be the request's
// repository exactly, the actions after `@` must all be among the request's, a config naming a
// repository beats one that names none, and more actions beat fewer.

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

export interface CredentialSources {
  /** From inputs (username/password, registry-auth): they win over everything else. */
  explicit?: Map<string, Credential>
  /** The docker config, as docker/login-action writes it. */
  config?: DockerConfig
  /**
   * Scoped docker configs (docker/login-action's `scope` input): they win over `config` for the
   * requests they cover. By default those under $BUILDX_CONFIG (else $DOCKER_CONFIG/buildx, else
   * ~/.docker/buildx) when `config` is given, none when it is not.
   */
  scoped?: readonly ScopedConfig[]
  /** Used for ghcr.io when nothing else names it: the workflow's GITHUB_TOKEN. */
  githubToken?: string
  /** Runs credential helpers; tests replace it. */
  runHelper?: HelperRunner
  /** Told which scoped config a registry's credentials come from (a path, never a secret). */
  log?: (line: string) => void
}

/**
 * Credentials in docker's order of precedence, after the action's own inputs; one lookup per
 * registry and docker config used for it.
 */
export class StaticCredentials implements CredentialStore {
  private readonly cache = new Map<string, Promise<Credential | undefined>>()
  private scopedConfigs?: readonly ScopedConfig[]

  constructor(private readonly sources: CredentialSources = {}) {}

  get(registry: string, scopes?: readonly string[]): Promise<Credential | undefined> {
    const explicit = this.sources.explicit?.get(registry)
    if (explicit) return Promise.resolve(explicit)
    this.scopedConfigs ??=
      this.sources.scoped ?? (this.sources.config ? readScopedConfigs(process.env) : [])
    const scoped = selectScopedConfig(this.scopedConfigs, registry, scopes)
    const key = scoped ? `${registry}\n${scoped.file}` : registry
    let found = this.cache.get(key)
    if (!found) this.cache.set(key, (found = this.find(registry, scoped)))
    return found
  }

  private async find(
    registry: string,
    scoped: ScopedConfig | undefined
  ): Promise<Credential | undefined> {
    const { config, githubToken, runHelper, log } = this.sources
    if (scoped) {
      const fromScoped = await configCredential(loadScopedConfig(scoped), registry, runHelper)
      if (fromScoped) {
        log?.(`credentials for ${registry}: the scoped docker config ${scoped.file}`)
        return fromScoped
      }
      // Buildx would go anonymous here; the unscoped config is the better guess.
      log?.(
        `the scoped docker config ${scoped.file} holds no credentials for ${registry}: using the unscoped docker config`
      )
    }
    const found = config ? await configCredential(config, registry, runHelper) : undefined
    if (found) return found
    if (registry === 'ghcr.io' && githubToken)
      return { username: 'x-access-token', password: githubToken }
    return undefined
  }
}
