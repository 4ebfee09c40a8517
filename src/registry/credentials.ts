// Where credentials come from: explicit inputs first, then the docker config that login actions write.
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { DOCKER_HUB } from '../core/reference.js'

export type Credential =
  { username: string; password: string } | { identityToken: string; username?: string }

export interface CredentialStore {
  get(registry: string): Credential | undefined
}

/** Keys docker config uses for a registry (Docker Hub has its historical URL). */
function configKeys(registry: string): string[] {
  if (registry === DOCKER_HUB) {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io']
  }
  return [
    registry,
    `https://${registry}`,
    `http://${registry}`,
    `https://${registry}/v1/`,
    `https://${registry}/v2/`
  ]
}

interface DockerConfig {
  auths?: Record<
    string,
    { auth?: string; username?: string; password?: string; identitytoken?: string }
  >
}

export function readDockerConfig(env: NodeJS.ProcessEnv = process.env): DockerConfig {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker')
  try {
    return JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as DockerConfig
  } catch {
    return {}
  }
}

/** Credentials from docker config `auths` entries. */
export function dockerConfigCredential(
  config: DockerConfig,
  registry: string
): Credential | undefined {
  for (const key of configKeys(registry)) {
    const entry = config.auths?.[key]
    if (!entry) continue
    let username = entry.username
    let password = entry.password
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const i = decoded.indexOf(':')
      if (i > 0) {
        username = decoded.slice(0, i)
        password = decoded.slice(i + 1)
      }
    }
    if (entry.identitytoken) return { identityToken: entry.identitytoken, username }
    if (username && password) return { username, password }
  }
  return undefined
}

export interface CredentialSources {
  /** From inputs (username/password, registry-auth): they win over everything else. */
  explicit?: Map<string, Credential>
  /** The docker config (auths), as docker/login-action writes it. */
  config?: DockerConfig
  /** Used for ghcr.io when nothing else names it: the workflow's GITHUB_TOKEN. */
  githubToken?: string
}

/** Credentials in docker's order of precedence, after the action's own inputs. */
export class StaticCredentials implements CredentialStore {
  constructor(private readonly sources: CredentialSources = {}) {}
  get(registry: string): Credential | undefined {
    const { explicit, config, githubToken } = this.sources
    const found =
      explicit?.get(registry) ?? (config ? dockerConfigCredential(config, registry) : undefined)
    if (found) return found
    if (registry === 'ghcr.io' && githubToken)
      return { username: 'x-access-token', password: githubToken }
    return undefined
  }
}
