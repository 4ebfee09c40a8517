// Test helper: a Docker token server (the `auth.token` realm of a Distribution registry) on
// 127.0.0.1. It checks Basic credentials (GET) and refresh tokens (the OAuth2 POST form), grants
// every scope asked for, and records each request so tests can count them and read their scopes.
// Tokens are ES256 JWTs whose `x5c` header carries a self-signed certificate: the registry's
// `rootcertbundle` holds the same certificate, which is how Distribution 2.8 trusts them.
import { execFile } from 'node:child_process'
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

export interface TokenRequest {
  method: string
  /** 'basic' (GET with credentials), 'anonymous' (GET without), 'refresh_token' (POST form). */
  grant: 'basic' | 'anonymous' | 'refresh_token'
  /** The user the request authenticated as; undefined when it was refused or anonymous. */
  user?: string
  /** Scopes asked for, one entry per scope. */
  scopes: string[]
  service?: string
  /** The `account` query parameter docker sends with Basic credentials. */
  account?: string
  status: number
}

export interface TokenServerOptions {
  /** user -> password */
  users: Record<string, string>
  /** identity (refresh) token -> user; also accepted as the password of Basic credentials. */
  refreshTokens?: Record<string, string>
  /** Status answered to every POST, as registries without the OAuth2 form do (GCR 404, ACR 400). */
  postStatus?: number
  /** Repositories anyone may pull: anonymous requests get pull on these and nothing else. */
  publicRepos?: string[]
  /** How many of the next tokens issued are already expired (counts down). */
  expiredTokens?: number
}

export interface TokenServer {
  /** The realm: http://127.0.0.1:PORT/token */
  realm: string
  service: string
  issuer: string
  /** PEM file with the signing certificate, for the registry's rootcertbundle. */
  certFile: string
  /** The options, read at each request: a test may change them between runs. */
  options: TokenServerOptions
  requests: TokenRequest[]
  /** Every token the server issued to a client (to check none is ever printed); not mint()'s. */
  issued: string[]
  /** A token granting `scopes` directly, for fixtures pushed behind the product's back. */
  mint(scopes: string[]): string
  stop(): Promise<void>
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url')

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '')
  if (!m) return undefined
  const decoded = Buffer.from(m[1], 'base64').toString('utf8')
  const i = decoded.indexOf(':')
  return i < 0 ? undefined : { user: decoded.slice(0, i), password: decoded.slice(i + 1) }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** Distribution's access claim for a scope string `type:name:actions`. */
function access(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first <= 0 || last === first) return undefined
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',')
  }
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const dir = await mkdtemp(join(tmpdir(), 'mm-token-'))
  const keyFile = join(dir, 'token.key')
  const certFile = join(dir, 'token.crt')
  await execFileP('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=multiarch-merge test token issuer',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyCertSign'
  ])
  const key: KeyObject = createPrivateKey(await readFile(keyFile))
  const certDer = new X509Certificate(await readFile(certFile)).raw
  const service = 'multiarch-merge-test-registry'
  const issuer = 'multiarch-merge-test-issuer'
  const requests: TokenRequest[] = []
  const issued: string[] = []

  const mint = (scopes: string[], subject = '', expired = false): string => {
    // Distribution allows some clock skew: an hour ago is expired for it.
    const now = Math.floor(Date.now() / 1000) - (expired ? 3600 : 0)
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] }
    const claims = {
      iss: issuer,
      sub: subject,
      aud: service,
      exp: now + 600,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access: scopes.map(access).filter((a) => a !== undefined)
    }
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`
    const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    return `${input}.${b64url(signature)}`
  }

  const server = createServer((req, res) => {
    const answer = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    const go = async (): Promise<void> => {
      const url = new URL(req.url ?? '/', 'http://x')
      let record: TokenRequest
      if (req.method === 'POST') {
        const form = new URLSearchParams(await readBody(req))
        const refresh = form.get('refresh_token') ?? ''
        const user = opts.refreshTokens?.[refresh]
        record = {
          method: 'POST',
          grant: 'refresh_token',
          user,
          scopes: (form.get('scope') ?? '').split(' ').filter(Boolean),
          service: form.get('service') ?? undefined,
          status: opts.postStatus ?? (user ? 200 : 401)
        }
      } else {
        const basic = parseBasic(req.headers.authorization)
        const ok =
          basic !== undefined &&
          (opts.users[basic.user] === basic.password ||
            opts.refreshTokens?.[basic.password] !== undefined)
        record = {
          method: req.method ?? '',
          grant: basic ? 'basic' : 'anonymous',
          user: ok ? basic.user : undefined,
          scopes: url.searchParams.getAll('scope').flatMap((s) => s.split(' ')),
          service: url.searchParams.get('service') ?? undefined,
          account: url.searchParams.get('account') ?? undefined,
          status: basic && !ok ? 401 : 200
        }
      }
      requests.push(record)
      if (record.status !== 200) {
        answer(record.status, { details: 'authentication failed' })
        return
      }
      // Anonymous requests get pull on public repositories only, as Docker Hub does.
      const granted = record.user
        ? record.scopes
        : record.scopes
            .map(access)
            .filter((a) => a && a.type === 'repository' && opts.publicRepos?.includes(a.name))
            .map((a) => `repository:${a!.name}:pull`)
      const expired = (opts.expiredTokens ?? 0) > 0
      if (expired) opts.expiredTokens! -= 1
      const token = mint(granted, record.user, expired)
      issued.push(token)
      const body = { token, access_token: token, expires_in: 600, issued_at: new Date() }
      answer(200, body)
    }
    go().catch(() => res.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as AddressInfo).port
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certFile,
    options: opts,
    requests,
    issued,
    mint: (scopes) => mint(scopes, 'fixtures'),
    stop: async () => {
      await new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      })
      await rm(dir, { recursive: true, force: true })
    }
  }
}
