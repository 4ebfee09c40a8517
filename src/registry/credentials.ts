// Where credentials come from, in this order: the action's inputs, then a scoped docker config
// (docker/login-action's `scope` input, read as buildx reads it), then the docker config that
// login actions write (credHelpers, credsStore, auths), then the workflow's GITHUB_TOKEN for ghcr.io.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DOCKER_HUB, registryOf } from '../core/reference.js'
import {
  dockerConfigDir,
  loadScopedConfig,
  readScopedConfigs,
  selectScopedConfig,
  type ScopedConfig
} from './scoped-credentials.js'

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

export async function runCredentialHelper(
  helper: string,
  registry: string,
  timeoutMs = HELPER_TIMEOUT_MS
): Promise<Credential | undefined> {
  // Loaded when a helper runs: child_process brings four more of Node's modules to every start.
  const { execFile } = await import('node:child_process')
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
