// Registry authentication: Basic, and Bearer tokens from the WWW-Authenticate challenge.
// One token per registry covering every scope the run needs (pull for sources, pull+push for
// targets), so a cross-repository mount is authorised by a single token.
import type { Credential, CredentialStore } from './credentials.js'
import { parseChallenges, type Challenge } from './challenge.js'
import { isLoopback } from '../core/reference.js'
import { RegistryError, describeErrorBody } from './errors.js'
import type { RegistryRequest, RegistryResponse, Send } from './request.js'
import { header } from './transport.js'

interface AuthState {
  /** The credential sent with every request to the registry's origin, when any. */
  value?: string
  scheme?: 'basic' | 'bearer'
  /** Whom that credential speaks for, for messages: "as alice", "anonymously". */
  who: string
  generation: number
}

const MAX_TOKEN_BYTES = 1024 * 1024

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
    private readonly send: Send,
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

  private state(registry: string): AuthState {
    let s = this.states.get(registry)
    if (!s) this.states.set(registry, (s = { who: 'anonymously', generation: 0 }))
    return s
  }

  /** Counts credential changes: a 401 to an older generation is retried, not refreshed again. */
  generation(registry: string): number {
    return this.state(registry).generation
  }

  /** The credential for requests to the registry's own origin ("Basic ...", "Bearer ..."). */
  credential(registry: string): string | undefined {
    return this.state(registry).value
  }

  /** The error for a 401 that a fresh credential did not cure. */
  refusal(registry: string, repo: string, where: string): RegistryError {
    const s = this.state(registry)
    const details = { status: 401, registry, repository: repo }
    if (s.scheme === 'basic') {
      return new RegistryError(
        `registry ${registry} refused the credentials ${s.who} for ${repo} (HTTP 401): check the username and password for ${registry} and that they may access ${repo}`,
        details
      )
    }
    const hint =
      s.who === 'anonymously'
        ? `no credentials are configured for ${registry} (log in with docker/login-action or set the username/password inputs)`
        : `check the credentials for ${registry} and that they may access ${repo}`
    return new RegistryError(`registry ${registry} refused ${where} ${s.who}: ${hint}`, details)
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
  private async stored(registry: string): Promise<Credential | undefined> {
    // The scopes pick docker/login-action's per-repository credentials, where it wrote some.
    const cred = await this.credentials.get(registry, this.scopeList(registry))
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
    const details = { status: 401, registry, repository: repo }
    const challenges = parseChallenges(wwwAuthenticate)
    const bearer = challenges.find((c) => c.scheme === 'bearer')
    const basic = challenges.find((c) => c.scheme === 'basic')
    if (!bearer && !basic) {
      throw new RegistryError(
        `registry ${registry} refused access to ${repo} (401) without a usable WWW-Authenticate challenge`,
        details
      )
    }
    const cred = await this.stored(registry)
    if (bearer) {
      const token = await this.fetchToken(registry, bearer, cred, repo)
      this.mask(token)
      s.value = `Bearer ${token}`
      s.scheme = 'bearer'
    } else {
      if (!cred) {
        throw new RegistryError(
          `registry ${registry} requires a username and password for ${repo}, and none were given (log in with docker/login-action or set the username/password inputs)`,
          details
        )
      }
      const value = `Basic ${basicValue(cred)}`
      // These very credentials were just refused: asking again would only be refused again.
      if (s.value === value) throw this.refusal(registry, repo, repo)
      s.value = value
      s.scheme = 'basic'
    }
    s.who = describe(cred)
    s.generation++
  }

  private async fetchToken(
    registry: string,
    c: Challenge,
    cred: Credential | undefined,
    repo: string
  ): Promise<string> {
    const realm = c.params.realm
    if (!realm || !URL.canParse(realm)) {
      throw new RegistryError(
        `registry ${registry} sent a Bearer challenge without a usable realm`,
        { status: 401, registry, repository: repo }
      )
    }
    // Credentials never cross the network in clear: a realm on plain HTTP must be on this machine.
    const u = new URL(realm)
    if (cred && u.protocol !== 'https:' && !isLoopback(u.host)) {
      throw new RegistryError(
        `registry ${registry} named a token realm on plain HTTP (${u.origin}): credentials are not sent there`,
        { status: 401, registry, repository: repo }
      )
    }
    const asked = this.addChallengeScopes(registry, c.params.scope)
    const all = this.scopeList(registry)
    const ask = (scopes: string[]): Promise<string> =>
      this.tokenRequest({ registry, repo, realm, service: c.params.service, scopes, cred })
    try {
      return await ask(all)
    } catch (e) {
      // Docker Hub refuses a whole request when one scope is not accessible: retry with the
      // scopes this request needs only.
      const needed = asked.length ? asked : all.filter((s) => s.startsWith(`repository:${repo}:`))
      if (needed.length === 0 || needed.length >= all.length) throw e
      return ask(needed)
    }
  }

  private async tokenRequest(t: TokenAsk): Promise<string> {
    let res: RegistryResponse | undefined
    if (t.cred && 'identityToken' in t.cred) {
      res = await this.postToken(t, t.cred.identityToken)
      if (NO_OAUTH_POST.has(res.status)) res = undefined
    }
    res ??= await this.getToken(t)
    const { registry, repo } = t
    const host = new URL(t.realm).host
    const details = { registry, repository: repo, request: 'token request', status: res.status }
    if (res.status !== 200) {
      const { text, code } = describeErrorBody(Buffer.from(res.body).toString('utf8'))
      const detail = `token server ${host} answered HTTP ${res.status}${text ? ` (${text})` : ''}`
      if (res.status === 401 || res.status === 403) {
        const hint = t.cred
          ? `check the credentials for ${registry} and that they may access ${repo}`
          : 'no credentials are configured for it: log in with docker/login-action or set the username/password inputs'
        throw new RegistryError(
          `registry ${registry} refused access ${describe(t.cred)} to ${repo}: ${detail}; ${hint}`,
          { ...details, status: 401, code }
        )
      }
      throw new RegistryError(
        `token request for ${repo} on registry ${registry} (${t.scopes.join(' ')}) failed ${describe(t.cred)}: ${detail}`,
        { ...details, code }
      )
    }
    let doc: { token?: unknown; access_token?: unknown }
    try {
      doc = JSON.parse(Buffer.from(res.body).toString('utf8')) as typeof doc
    } catch {
      throw new RegistryError(
        `token server ${host} for registry ${registry} returned a response that is not JSON (content-type ${header(res.headers, 'content-type') ?? 'none'})`,
        details
      )
    }
    const token = doc.token || doc.access_token
    if (typeof token !== 'string' || !token)
      throw new RegistryError(
        `token server ${host} for registry ${registry} returned no token`,
        details
      )
    // It goes into a header and is masked in the log: visible ASCII only, and never quoted.
    if (!/^[\x21-\x7e]+$/.test(token))
      throw new RegistryError(
        `token server ${host} for registry ${registry} returned a token with characters a header cannot carry`,
        details
      )
    return token
  }

  /** A token request: outside the limiter, Basic credentials to the realm's origin only. */
  private sendToken(
    t: TokenAsk,
    method: 'GET' | 'POST',
    url: string,
    init: Pick<RegistryRequest, 'headers' | 'body' | 'token'>
  ): Promise<RegistryResponse> {
    return this.send({
      repo: { registry: t.registry, repository: t.repo },
      method,
      url,
      what: `token for ${t.repo}`,
      label: 'token request',
      expect: 'any',
      read: { maxBytes: MAX_TOKEN_BYTES, limitName: 'token responses' },
      unlimited: true,
      token: {},
      ...init
    })
  }

  private getToken(t: TokenAsk): Promise<RegistryResponse> {
    const u = new URL(t.realm)
    if (t.service) u.searchParams.set('service', t.service)
    for (const s of t.scopes) u.searchParams.append('scope', s)
    if (t.cred?.username) u.searchParams.set('account', t.cred.username)
    const credential = t.cred && `Basic ${basicValue(t.cred)}`
    return this.sendToken(t, 'GET', u.toString(), { token: { credential } })
  }

  /** OAuth2 refresh-token grant, as docker does with identity tokens. */
  private postToken(t: TokenAsk, identityToken: string): Promise<RegistryResponse> {
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: identityToken,
      client_id: 'multiarch-merge'
    })
    if (t.service) form.set('service', t.service)
    if (t.scopes.length) form.set('scope', t.scopes.join(' '))
    const body = form.toString()
    return this.sendToken(t, 'POST', t.realm, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: () => body
    })
  }
}

interface TokenAsk {
  registry: string
  repo: string
  realm: string
  service?: string
  scopes: string[]
  cred?: Credential
}
