// Where credentials come from, in this order: the action's inputs, then the docker config that
// login actions write (credHelpers, credsStore, auths), then the workflow's GITHUB_TOKEN for ghcr.io.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { DOCKER_HUB, registryOf } from '../core/reference.js'

export type Credential =
  { username: string; password: string } | { identityToken: string; username?: string }

export interface CredentialStore {
  get(registry: string): Promise<Credential | undefined>
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

/** A config key reduced to the registry it names, as docker matches legacy keys. */

/** The entry for `registry`: under its own key first, then under any key naming the same host. */
function lookup<T>(map: Record<string, T> | undefined, registry: string): T | undefined {
  if (!map) return undefined
  if (Object.hasOwn(map, serverAddress(registry))) return map[serverAddress(registry)]
  for (const [key, value] of Object.entries(map)) if (registryOf(key) === registry) return value
  return undefined
}

export function readDockerConfig(env: NodeJS.ProcessEnv = process.env): DockerConfig {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker')
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

export interface CredentialSources {
  /** From inputs (username/password, registry-auth): they win over everything else. */
  explicit?: Map<string, Credential>
  /** The docker config, as docker/login-action writes it. */
  config?: DockerConfig
  /** Used for ghcr.io when nothing else names it: the workflow's GITHUB_TOKEN. */
  githubToken?: string
  /** Runs credential helpers; tests replace it. */
  runHelper?: HelperRunner
}

/** Credentials in docker's order of precedence, after the action's own inputs; one lookup per registry. */
export class StaticCredentials implements CredentialStore {
  private readonly cache = new Map<string, Promise<Credential | undefined>>()

  constructor(private readonly sources: CredentialSources = {}) {}

  get(registry: string): Promise<Credential | undefined> {
    let found = this.cache.get(registry)
    if (!found) this.cache.set(registry, (found = this.find(registry)))
    return found
  }

  private async find(registry: string): Promise<Credential | undefined> {
    const { explicit, config, githubToken, runHelper } = this.sources
    const found =
      explicit?.get(registry) ??
      (config ? await configCredential(config, registry, runHelper) : undefined)
    if (found) return found
    if (registry === 'ghcr.io' && githubToken)
      return { username: 'x-access-token', password: githubToken }
    return undefined
  }
}
