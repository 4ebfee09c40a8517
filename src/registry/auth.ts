// Registry authentication: Basic, and Bearer tokens from the WWW-Authenticate challenge.
// One token per registry covering every scope the run needs (pull for sources, pull+push for
// targets), so a cross-repository mount is authorised by a single token.
import type { Credential, CredentialStore } from './credentials.js'
import { parseChallenges, type Challenge } from './challenge.js'
import { RegistryError, describeErrorBody } from './errors.js'
import { header, type Transport } from './transport.js'

interface AuthState {
  /** Value of the Authorization header, when any. */
  authorization?: string
  generation: number
}

export class Authenticator {
  private readonly states = new Map<string, AuthState>()
  private readonly pending = new Map<string, Promise<void>>()
  private readonly scopes = new Map<string, Map<string, Set<string>>>()

  constructor(
    private readonly transport: Transport,
    private readonly credentials: CredentialStore,
    private readonly onSecret: (secret: string) => void = () => {}
  ) {}

  /** Declares that the run will need `actions` on `repository` of `registry`. */
  declare(registry: string, repository: string, actions: Array<'pull' | 'push'>): void {
    let repos = this.scopes.get(registry)
    if (!repos) this.scopes.set(registry, (repos = new Map<string, Set<string>>()))
    let set = repos.get(repository)
    if (!set) repos.set(repository, (set = new Set()))
    for (const a of actions) set.add(a)
  }

  /** Push scopes first: some registries read only the first scope of a request. */
  private scopeList(registry: string): string[] {
    const repos = [...(this.scopes.get(registry)?.entries() ?? [])]
    const fmt = ([repo, set]: [string, Set<string>]): string =>
      `repository:${repo}:${['pull', 'push'].filter((a) => set.has(a)).join(',')}`
    return [
      ...repos.filter(([, s]) => s.has('push')),
      ...repos.filter(([, s]) => !s.has('push'))
    ].map(fmt)
  }

  state(registry: string): AuthState {
    let s = this.states.get(registry)
    if (!s) this.states.set(registry, (s = { generation: 0 }))
    return s
  }

  /**
   * Handles a 401 seen while using `generation`. Concurrent callers share one token request;
   * a caller whose generation is already stale just retries with the newer token.
   */
  async refresh(
    registry: string,
    generation: number,
    wwwAuthenticate: string | undefined,
    repo: string
  ): Promise<void> {
    const s = this.state(registry)
    if (s.generation !== generation) return
    let p = this.pending.get(registry)
    if (!p) {
      p = this.authenticate(registry, wwwAuthenticate, repo).finally(() =>
        this.pending.delete(registry)
      )
      this.pending.set(registry, p)
    }
    await p
  }

  private async authenticate(
    registry: string,
    wwwAuthenticate: string | undefined,
    repo: string
  ): Promise<void> {
    const s = this.state(registry)
    const challenges = parseChallenges(wwwAuthenticate)
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    const basic = challenges.find((c) => c.scheme === 'basic')
    const cred = this.credentials.get(registry)
    if (bearer) {
      const token = await this.fetchToken(registry, bearer, cred, repo)
      this.onSecret(token)
      s.authorization = `Bearer ${token}`
    } else if (basic) {
      if (!cred || !('password' in cred)) {
        throw new RegistryError(
          `registry ${registry} requires a username and password for ${repo}, and none were given (log in with docker/login-action or set the username/password inputs)`,
          401
        )
      }
      s.authorization =
        'Basic ' + Buffer.from(`${cred.username}:${cred.password}`).toString('base64')
    } else {
      throw new RegistryError(
        `registry ${registry} refused access to ${repo} (401) without a usable WWW-Authenticate challenge`,
        401
      )
    }
    s.generation++
  }

  private async fetchToken(
    registry: string,
    c: Challenge,
    cred: Credential | undefined,
    repo: string
  ): Promise<string> {
    const realm = c.params.realm
    if (!realm)
      throw new RegistryError(`registry ${registry} sent a Bearer challenge without a realm`, 401)
    const all = this.scopeList(registry)
    if (c.params.scope && !all.includes(c.params.scope)) all.push(c.params.scope)
    try {
      return await this.tokenRequest(registry, realm, c.params.service, all, cred)
    } catch (e) {
      // Docker Hub refuses a whole request when one scope is not accessible: retry with the
      // scope this request needs only.
      const needed = c.params.scope
        ? [c.params.scope]
        : all.filter((s) => s.startsWith(`repository:${repo}:`))
      if (needed.length === 0 || needed.length === all.length) throw e
      return this.tokenRequest(registry, realm, c.params.service, needed, cred)
    }
  }

  private async tokenRequest(
    registry: string,
    realm: string,
    service: string | undefined,
    scopes: string[],
    cred: Credential | undefined
  ): Promise<string> {
    let res
    if (cred && 'identityToken' in cred) {
      // OAuth2 refresh-token grant, as docker does with identity tokens.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: cred.identityToken,
        client_id: 'multiarch-merge'
      })
      if (service) form.set('service', service)
      if (scopes.length) form.set('scope', scopes.join(' '))
      res = await this.transport.send({
        method: 'POST',
        url: realm,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString()
      })
    } else {
      const u = new URL(realm)
      if (service) u.searchParams.set('service', service)
      for (const s of scopes) u.searchParams.append('scope', s)
      const headers: Record<string, string> = {}
      if (cred)
        headers.authorization =
          'Basic ' + Buffer.from(`${cred.username}:${cred.password}`).toString('base64')
      res = await this.transport.send({ method: 'GET', url: u.toString(), headers })
    }
    const who = cred ? `as ${cred.username ?? 'the identity token user'}` : 'anonymously'
    if (res.status !== 200) {
      const { text } = describeErrorBody(Buffer.from(res.body).toString('utf8'))
      throw new RegistryError(
        `token request to ${new URL(realm).host} for ${registry} (${scopes.join(' ')}) failed ${who}: HTTP ${res.status}${text ? ` ${text}` : ''}`,
        res.status
      )
    }
    let doc: { token?: string; access_token?: string }
    try {
      doc = JSON.parse(Buffer.from(res.body).toString('utf8')) as typeof doc
    } catch {
      throw new RegistryError(
        `token endpoint ${new URL(realm).host} for ${registry} returned a response that is not JSON (content-type ${header(res.headers, 'content-type') ?? 'none'})`
      )
    }
    const token = doc.token ?? doc.access_token
    if (!token)
      throw new RegistryError(
        `token endpoint ${new URL(realm).host} for ${registry} returned no token`
      )
    return token
  }
}
