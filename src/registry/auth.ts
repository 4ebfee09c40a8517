// Registry authentication: Basic, and Bearer tokens from the WWW-Authenticate challenge.
// One token per registry covering every scope the run needs (pull for sources, pull+push for
// targets), so a cross-repository mount is authorised by a single token.
import type { Credential, CredentialStore } from './credentials.js'
import { parseChallenges, type Challenge } from './challenge.js'
import { RegistryError, describeErrorBody } from './errors.js'
import { header, type HttpRequest, type HttpResponse, type Transport } from './transport.js'

interface AuthState {
  /** Value of the Authorization header, when any. */
  authorization?: string
  /** Whom that header speaks for, for messages: "as alice", "anonymously". */
  who: string
  generation: number
}

/** Status codes with which registries refuse the OAuth2 POST form (GCR 404, ACR 400, JFrog 401). */
const NO_OAUTH_POST = new Set([400, 401, 404, 405])

const ACTION_ORDER = ['pull', 'push']

function describe(cred: Credential | undefined): string {
  if (!cred) return 'anonymously'
  return cred.username ? `as ${cred.username}` : 'with an identity token'
}

/** user:secret for Basic auth; an identity token stands in for the password. */
function basicValue(cred: Credential): string {
  const [user, secret] =
    'password' in cred
      ? [cred.username, cred.password]
      : [cred.username || '<token>', cred.identityToken]
  return Buffer.from(`${user}:${secret}`).toString('base64')
}

export class Authenticator {
  private readonly states = new Map<string, AuthState>()
  private readonly pending = new Map<string, Promise<void>>()
  /** registry -> resource ("repository:app") -> actions */
  private readonly scopes = new Map<string, Map<string, Set<string>>>()
  private readonly masked = new Set<string>()

  constructor(
    private readonly transport: Transport,
    private readonly credentials: CredentialStore,
    private readonly onSecret: (secret: string) => void = () => {}
  ) {}

  /** Declares that the run will need `actions` on `repository` of `registry`. */
  declare(registry: string, repository: string, actions: Array<'pull' | 'push'>): void {
    this.addScope(registry, `repository:${repository}`, actions)
  }

  private addScope(registry: string, resource: string, actions: Iterable<string>): void {
    let resources = this.scopes.get(registry)
    if (!resources) this.scopes.set(registry, (resources = new Map<string, Set<string>>()))
    let set = resources.get(resource)
    if (!set) resources.set(resource, (set = new Set()))
    for (const a of actions) set.add(a)
  }

  /** Adds the scopes a challenge asks for ("repository:a:pull,push repository:b:pull"). */
  private addChallengeScopes(registry: string, scope: string | undefined): string[] {
    const out: string[] = []
    for (const s of (scope ?? '').split(/\s+/)) {
      const i = s.lastIndexOf(':')
      if (i <= 0 || s.indexOf(':') === i) continue
      this.addScope(registry, s.slice(0, i), s.slice(i + 1).split(','))
      out.push(s)
    }
    return out
  }

  /** Push scopes first: some registries read only the first scope of a request. */
  private scopeList(registry: string): string[] {
    const rank = (a: string): number => {
      const i = ACTION_ORDER.indexOf(a)
      return i === -1 ? ACTION_ORDER.length : i
    }
    const all = [...(this.scopes.get(registry)?.entries() ?? [])].map(([resource, set]) => ({
      push: set.has('push'),
      scope: `${resource}:${[...set].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).join(',')}`
    }))
    return [...all.filter((s) => s.push), ...all.filter((s) => !s.push)].map((s) => s.scope)
  }

  state(registry: string): AuthState {
    let s = this.states.get(registry)
    if (!s) this.states.set(registry, (s = { who: 'anonymously', generation: 0 }))
    return s
  }

  /**
   * The Authorization header for a request to `url`: only when `url` is on the registry's own
   * `origin`, never for a redirect or an upload Location that points elsewhere.
   */
  headerFor(registry: string, origin: string, url: string): Record<string, string> {
    const auth = this.state(registry).authorization
    return auth && new URL(url).origin === origin ? { authorization: auth } : {}
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

  private mask(secret: string): void {
    if (!secret || this.masked.has(secret)) return
    this.masked.add(secret)
    this.onSecret(secret)
  }

  /** The registry's credential, masked before anything can print it. */
  private async credential(registry: string): Promise<Credential | undefined> {
    const cred = await this.credentials.get(registry)
    if (cred) {
      this.mask('password' in cred ? cred.password : cred.identityToken)
      this.mask(basicValue(cred))
    }
    return cred
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
    if (!bearer && !basic) {
      throw new RegistryError(
        `registry ${registry} refused access to ${repo} (401) without a usable WWW-Authenticate challenge`,
        401
      )
    }
    const cred = await this.credential(registry)
    const who = describe(cred)
    if (bearer) {
      const token = await this.fetchToken(registry, bearer, cred, repo)
      this.mask(token)
      s.authorization = `Bearer ${token}`
    } else {
      if (!cred) {
        throw new RegistryError(
          `registry ${registry} requires a username and password for ${repo}, and none were given (log in with docker/login-action or set the username/password inputs)`,
          401
        )
      }
      const authorization = `Basic ${basicValue(cred)}`
      // These very credentials were just refused: asking again would only be refused again.
      if (s.authorization === authorization) {
        throw new RegistryError(
          `registry ${registry} refused the credentials ${who} for ${repo} (HTTP 401): check the username and password for ${registry} and that they may access ${repo}`,
          401
        )
      }
      s.authorization = authorization
    }
    s.who = who
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
    const asked = this.addChallengeScopes(registry, c.params.scope)
    const all = this.scopeList(registry)
    try {
      return await this.tokenRequest(registry, realm, c.params.service, all, cred, repo)
    } catch (e) {
      // Docker Hub refuses a whole request when one scope is not accessible: retry with the
      // scopes this request needs only.
      const needed = asked.length ? asked : all.filter((s) => s.startsWith(`repository:${repo}:`))
      if (needed.length === 0 || needed.length >= all.length) throw e
      return this.tokenRequest(registry, realm, c.params.service, needed, cred, repo)
    }
  }

  /**
   * Token requests skip the transport's concurrency limiter: they are made while blob copies hold
   * its slots, waiting for this very token.
   */
  private send(req: HttpRequest): Promise<HttpResponse> {
    const op = { method: req.method, url: req.url, label: 'token request' }
    return this.transport.withRetries(op, async (attempt) => {
      const res = await this.transport.sendOnce(req, this.transport.headersTimeoutFor(attempt))
      const body = Buffer.from(await res.body.arrayBuffer())
      return { status: res.statusCode, headers: res.headers, body, url: req.url }
    })
  }

  private getToken(
    realm: string,
    service: string | undefined,
    scopes: string[],
    cred: Credential | undefined
  ): Promise<HttpResponse> {
    const u = new URL(realm)
    if (service) u.searchParams.set('service', service)
    for (const s of scopes) u.searchParams.append('scope', s)
    const headers: Record<string, string> = {}
    if (cred) {
      if (cred.username) u.searchParams.set('account', cred.username)
      headers.authorization = `Basic ${basicValue(cred)}`
    }
    return this.send({ method: 'GET', url: u.toString(), headers })
  }

  /** OAuth2 refresh-token grant, as docker does with identity tokens. */
  private postToken(
    realm: string,
    service: string | undefined,
    scopes: string[],
    identityToken: string
  ): Promise<HttpResponse> {
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: identityToken,
      client_id: 'multiarch-merge'
    })
    if (service) form.set('service', service)
    if (scopes.length) form.set('scope', scopes.join(' '))
    return this.send({
      method: 'POST',
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString()
    })
  }

  private async tokenRequest(
    registry: string,
    realm: string,
    service: string | undefined,
    scopes: string[],
    cred: Credential | undefined,
    repo: string
  ): Promise<string> {
    let res: HttpResponse | undefined
    if (cred && 'identityToken' in cred) {
      res = await this.postToken(realm, service, scopes, cred.identityToken)
      if (NO_OAUTH_POST.has(res.status)) res = undefined
    }
    res ??= await this.getToken(realm, service, scopes, cred)
    const host = new URL(realm).host
    if (res.status !== 200) {
      const { text } = describeErrorBody(Buffer.from(res.body).toString('utf8'))
      const detail = `token server ${host} answered HTTP ${res.status}${text ? ` (${text})` : ''}`
      if (res.status === 401 || res.status === 403) {
        const hint = cred
          ? `check the credentials for ${registry} and that they may access ${repo}`
          : 'no credentials are configured for it: log in with docker/login-action or set the username/password inputs'
        throw new RegistryError(
          `registry ${registry} refused access ${describe(cred)} to ${repo}: ${detail}; ${hint}`,
          401
        )
      }
      throw new RegistryError(
        `token request for ${repo} on registry ${registry} (${scopes.join(' ')}) failed ${describe(cred)}: ${detail}`,
        res.status
      )
    }
    let doc: { token?: string; access_token?: string }
    try {
      doc = JSON.parse(Buffer.from(res.body).toString('utf8')) as typeof doc
    } catch {
      throw new RegistryError(
        `token server ${host} for registry ${registry} returned a response that is not JSON (content-type ${header(res.headers, 'content-type') ?? 'none'})`
      )
    }
    const token = doc.token || doc.access_token
    if (!token)
      throw new RegistryError(`token server ${host} for registry ${registry} returned no token`)
    return token
  }
}
