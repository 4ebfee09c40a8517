// The machinery the registry profiles share. A profile is a proxy (../proxy.ts) in front of the
// real Distribution registry that plays one registry's authentication (a Bearer token server of
// its own, or a Basic challenge) and answers, where that registry differs from Distribution, as
// that registry does. The behaviours themselves, each with its public source, are in hosted.ts
// and selfhosted.ts (built from rules.ts); this file runs them. 127.0.0.1 only.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import {
  createServer,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse
} from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { forward } from '../faults.js'
import { startProxy } from '../proxy.js'
import type { TestRegistry } from '../registry.js'
import { mountsAnswer202, subjectOrder } from './rules.js'
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  OCI_INDEX,
  OCI_MANIFEST,
  parseRoute,
  type Buffered,
  type ManifestDoc,
  type ProfileContext,
  type ProfileEvent,
  type ProfileSpec,
  type ReferrerDescriptor,
  type RegistryProfile,
  type RepoOptions,
  type ResponseHook,
  type Route
} from './types.js'

const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(', ')

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** Wraps res.writeHead so every answer (forwarded or made here) carries `extra` too. */
function addHeaders(res: ServerResponse, extra: () => Record<string, string>): void {
  const orig = res.writeHead.bind(res) as (...a: unknown[]) => ServerResponse
  res.writeHead = (status: number, ...rest: unknown[]) => {
    const message = typeof rest[0] === 'string' ? rest[0] : undefined
    const given = rest.find((x) => typeof x === 'object' && x !== null && !Array.isArray(x)) as
      Record<string, unknown> | undefined
    const headers = { ...(given ?? {}), ...extra() }
    return message === undefined ? orig(status, headers) : orig(status, message, headers)
  }
}

function parseBasic(h: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(h ?? '')
  if (!m) return undefined
  const s = Buffer.from(m[1], 'base64').toString('utf8')
  const i = s.indexOf(':')
  return i < 0 ? undefined : { user: s.slice(0, i), password: s.slice(i + 1) }
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

function close(server: Server): Promise<void> {
  return new Promise((r) => {
    server.closeAllConnections()
    server.close(() => r())
  })
}

/** Starts `spec` in front of `upstream` (a Distribution registry without auth). */
export async function startProfile(
  spec: ProfileSpec,
  upstream: TestRegistry
): Promise<RegistryProfile> {
  const upstreamUrl = new URL(upstream.url)
  const proxy = await startProxy(upstream.url)
  const user = `${spec.name}-user`
  const password = `${spec.name}-Pa55word-${randomBytes(4).toString('hex')}`
  const identityToken = `${spec.name}-identity-${randomBytes(6).toString('hex')}`
  const tokens = new Map<string, { anonymous: boolean }>()
  const prefixes: Array<{ prefix: string; o: RepoOptions }> = []
  const created = new Set<string>()
  const events: ProfileEvent[] = []
  const waiting: Array<{ kind: string; repo?: string; resolve: (e: ProfileEvent) => void }> = []
  const matches = (e: ProfileEvent, kind: string, repo?: string): boolean =>
    e.kind === kind && (repo === undefined || e.repo === repo)
  const tokenRequests: RegistryProfile['tokenRequests'] = []
  const bodies = new WeakMap<IncomingMessage, Promise<Buffer>>()
  const hooks = new WeakMap<IncomingMessage, ResponseHook[]>()

  const optionsFor = (repo: string | undefined): RepoOptions => {
    const o: RepoOptions = { ...spec.defaults }
    if (repo === undefined) return o
    // Longer prefixes win.
    for (const p of [...prefixes].sort((a, b) => a.prefix.length - b.prefix.length))
      if (repo === p.prefix || repo.startsWith(p.prefix)) Object.assign(o, p.o)
    return o
  }

  // --- the token server -------------------------------------------------------------------------
  const issue = (anonymous: boolean): string => {
    const t = `${spec.name}.${randomBytes(12).toString('base64url')}`
    tokens.set(t, { anonymous })
    return t
  }
  const tokenAnswer = (res: ServerResponse, token: string): void => {
    const fields = spec.auth.tokenFields ?? ['token', 'access_token']
    const doc: Record<string, unknown> = { expires_in: 300, issued_at: new Date().toISOString() }
    for (const f of fields) doc[f] = token
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(doc))
  }
  const tokenEndpoint = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const u = new URL(req.url ?? '/', 'http://x')
    if (req.method === 'POST') {
      const form = new URLSearchParams((await readAll(req)).toString('utf8'))
      const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean)
      const refused = scopes
        .map((s) => /^repository:(.+):[^:]*$/.exec(s)?.[1])
        .map((repo) => (repo === undefined ? undefined : optionsFor(repo).oauthPostStatus))
        .find((status) => status !== undefined)
      const ok = form.get('refresh_token') === identityToken
      const status = refused ?? (ok ? 200 : 401)
      tokenRequests.push({ method: 'POST', status, scopes })
      if (status === 200) return tokenAnswer(res, issue(false))
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'not supported' }] }))
      return
    }
    req.resume()
    const scopes = u.searchParams.getAll('scope')
    const basic = parseBasic(req.headers.authorization)
    const valid =
      !!basic &&
      ((basic.user === user && basic.password === password) || basic.password === identityToken)
    const status = basic && !valid ? 401 : 200
    tokenRequests.push({ method: 'GET', status, scopes })
    if (status !== 200) {
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ details: 'incorrect username or password' }))
      return
    }
    tokenAnswer(res, issue(!basic))
  }
  let tokenServer: Server | undefined
  let tokenOrigin = proxy.url
  if (spec.auth.scheme === 'bearer' && spec.auth.separateHost) {
    tokenServer = createServer((req, res) => {
      tokenEndpoint(req, res).catch(() => res.destroy())
    })
    tokenOrigin = `http://${await listen(tokenServer)}`
  }
  const realm = `${tokenOrigin}${spec.auth.realmPath ?? '/token'}`

  // --- authentication ---------------------------------------------------------------------------
  const authorized = (req: IncomingMessage): boolean => {
    const h = req.headers.authorization ?? ''
    if (spec.auth.scheme === 'basic') {
      const b = parseBasic(h)
      return !!b && b.user === user && b.password === password
    }
    const m = /^Bearer\s+(\S+)$/i.exec(h)
    const t = m ? tokens.get(m[1]) : undefined
    return !!t && !t.anonymous
  }
  const challenge = (req: IncomingMessage, res: ServerResponse, route: Route): void => {
    req.resume()
    let www: string
    if (spec.auth.scheme === 'basic') {
      www = spec.auth.basicChallenge?.(proxy.url) ?? `Basic realm="${proxy.url}"`
    } else {
      www = `Bearer realm="${realm}",service="${spec.auth.service ?? proxy.host}"`
      const write = !['GET', 'HEAD'].includes(req.method ?? '')
      if (spec.auth.fixedScope) www += `,scope="${spec.auth.fixedScope}"`
      else if (spec.auth.scopeInChallenge && route.repo)
        www += `,scope="repository:${route.repo}:${write ? 'pull,push' : 'pull'}"`
    }
    if (spec.auth.unauthorizedText !== undefined) {
      res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': www })
      res.end(spec.auth.unauthorizedText)
      return
    }
    const u = spec.auth.unauthorized ?? { code: 'UNAUTHORIZED', message: 'authentication required' }
    res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': www })
    res.end(JSON.stringify({ errors: [{ code: u.code, message: u.message, detail: null }] }))
  }

  // --- upstream ---------------------------------------------------------------------------------
  const headManifest = (repo: string, ref: string): Promise<{ status: number; digest?: string }> =>
    new Promise((resolve, reject) => {
      const r = httpRequestUpstream('HEAD', `/v2/${repo}/manifests/${ref}`, (res) => {
        res.resume()
        const d = res.headers['docker-content-digest']
        resolve({ status: res.statusCode ?? 0, digest: typeof d === 'string' ? d : undefined })
      })
      r.on('error', reject)
      r.end()
    })
  const httpRequestUpstream = (
    method: string,
    p: string,
    cb: (res: IncomingMessage) => void
  ): ClientRequest =>
    httpRequest(
      {
        host: upstreamUrl.hostname,
        port: upstreamUrl.port,
        method,
        path: p,
        headers: { accept: MANIFEST_ACCEPT }
      },
      cb
    )
  const repoDir = (repo: string): string =>
    path.join(upstream.storageDir, 'docker/registry/v2/repositories', repo)
  const referrers = async (repo: string, digest: string): Promise<ReferrerDescriptor[]> => {
    const dir = path.join(repoDir(repo), '_manifests/revisions/sha256')
    let hexes: string[]
    try {
      hexes = (await readdir(dir)).sort()
    } catch {
      return []
    }
    const out: ReferrerDescriptor[] = []
    for (const hex of hexes) {
      let bytes: Buffer
      try {
        bytes = await readFile(
          path.join(
            upstream.storageDir,
            'docker/registry/v2/blobs/sha256',
            hex.slice(0, 2),
            hex,
            'data'
          )
        )
      } catch {
        continue
      }
      let doc: ManifestDoc
      try {
        doc = JSON.parse(bytes.toString('utf8')) as ManifestDoc
      } catch {
        continue
      }
      if (doc?.subject?.digest !== digest) continue
      const d: ReferrerDescriptor = {
        mediaType: doc.mediaType ?? OCI_MANIFEST,
        digest: `sha256:${hex}`,
        size: bytes.length
      }
      // OCI distribution spec, "Listing Referrers": artifactType, else the config's media type.
      const artifactType = doc.artifactType ?? doc.config?.mediaType
      if (artifactType) d.artifactType = artifactType
      if (doc.annotations) d.annotations = doc.annotations
      out.push(d)
    }
    return out
  }

  const profile: RegistryProfile = {
    name: spec.name,
    title: spec.title,
    host: proxy.host,
    url: proxy.url,
    user,
    password,
    identityToken,
    proxy,
    spec,
    events,
    tokenRequests,
    configure: (prefix, o) => {
      prefixes.push({ prefix, o })
    },
    optionsFor,
    createRepository: (name) => {
      created.add(name)
    },
    count: (kind, repo) => events.filter((e) => matches(e, kind, repo)).length,
    waitFor: (kind, repo) => {
      const seen = events.find((e) => matches(e, kind, repo))
      if (seen) return Promise.resolve(seen)
      return new Promise((resolve) => waiting.push({ kind, repo, resolve }))
    },
    stop: async () => {
      await proxy.stop()
      if (tokenServer) await close(tokenServer)
    }
  }

  const ctx: ProfileContext = {
    upstream,
    profile,
    opts: optionsFor,
    body: (req) => {
      let b = bodies.get(req)
      if (!b) bodies.set(req, (b = readAll(req)))
      return b
    },
    json: async (req) => {
      try {
        const doc = JSON.parse((await ctx.body(req)).toString('utf8')) as unknown
        return typeof doc === 'object' && doc !== null ? doc : undefined
      } catch {
        return undefined
      }
    },
    onResponse: (req, fn) => {
      const list = hooks.get(req) ?? []
      list.push(fn)
      hooks.set(req, list)
    },
    error: (res, status, code, message, detail, headers = {}) => {
      const e: Record<string, unknown> = { code, message }
      if (detail !== undefined) e.detail = detail
      res.writeHead(status, { 'content-type': 'application/json', ...headers })
      res.end(JSON.stringify({ errors: [e] }))
      return true
    },
    headManifest,
    referrers,
    repoExists: (repo) => created.has(repo) || existsSync(repoDir(repo)),
    note: (e) => {
      events.push(e)
      for (const w of [...waiting])
        if (matches(e, w.kind, w.repo)) {
          waiting.splice(waiting.indexOf(w), 1)
          w.resolve(e)
        }
    }
  }

  // After the profile's own rules, the switches every profile has: the order of subjects and
  // what refers to them (RepoOptions.subjectMustExist, holdImageManifestsMs), and mounts not
  // done: a registry that does not mount a blob opens an upload session instead (202), the OCI
  // distribution spec's answer ("Mounting a blob from another repository",
  // https://github.com/opencontainers/distribution-spec/blob/main/spec.md). Profiles with an
  // answer of their own (Harbor's 401) have it among their rules, which come first.
  const rules = [...spec.rules, ...subjectOrder(), mountsAnswer202()]
  proxy.rules.push(async (req, res) => {
    const u = new URL(req.url ?? '/', 'http://x')
    if (
      spec.auth.scheme === 'bearer' &&
      !spec.auth.separateHost &&
      u.pathname === spec.auth.realmPath
    ) {
      await tokenEndpoint(req, res)
      return true
    }
    const route = parseRoute(u)
    if (spec.headers) {
      const h = spec.headers(route, req)
      addHeaders(res, () => h)
    }
    if (!authorized(req)) {
      challenge(req, res, route)
      return true
    }
    delete req.headers.authorization
    for (const rule of rules) if (await rule(req, res, route, ctx)) return true
    const own = hooks.get(req)
    const body = bodies.get(req)
    if (!own && !body) return false // proxy.ts pipes it upstream as it is
    const r: Buffered = await forward(upstreamUrl, req, body ? await body : undefined)
    for (const fn of own ?? []) await fn(r)
    // The body may have been replaced: its length is the one sent.
    delete r.headers['content-length']
    delete r.headers['transfer-encoding']
    res.writeHead(r.status, { ...r.headers, 'content-length': String(r.body.length) })
    res.end(req.method === 'HEAD' ? undefined : r.body)
    return true
  })
  return profile
}
