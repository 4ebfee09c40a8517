// Test helper: run a throw-away CNCF Distribution registry (Debian `docker-registry`, 2.8.x).
//
// The registry process is started through a tiny `sh` wrapper that holds the read end of a pipe
// connected to this (jest worker) process: when the pipe closes - because stop() ended it, or because
// the worker exited or was killed, even with SIGKILL - the wrapper kills and reaps the registry. So no
// registry outlives the test process, whatever the test does.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { rmSync } from 'node:fs'
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const execFileP = promisify(execFile)

export interface RegistryOptions {
  /** Enable basic auth backed by an htpasswd file (bcrypt, made with `htpasswd -Bbn`). */
  htpasswd?: { user: string; password: string }
  /** Serve HTTPS with a server cert for 127.0.0.1 (IP SAN) and localhost, signed by a fresh CA. */
  tls?: boolean
  /** Enable token auth (`auth.token`): a token server such as ./token-server.ts issues the JWTs. */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string }
}

export interface TestRegistry {
  /** '127.0.0.1:PORT' */
  host: string
  /** 'http://127.0.0.1:PORT' or 'https://127.0.0.1:PORT' */
  url: string
  /** The registry's filesystem storage rootdirectory. */
  storageDir: string
  /** CA certificate (PEM) that signed the server certificate, when tls. */
  caFile?: string
  /** Directory containing only `ca.crt` (usable as skopeo/buildah `--cert-dir`), when tls. */
  caDir?: string
  /** Credentials, when htpasswd auth is enabled. */
  auth?: { user: string; password: string }
  /** Registry stderr/stdout (warnings, errors and the access log). */
  logFile: string
  /** Kills the registry (waits for it to exit) and removes its temp dirs. Idempotent. */
  stop(): Promise<void>
}

interface Tracked {
  child: ChildProcess
  exited: Promise<void>
  /** Set while the registry is (believed to be) running. */
  registryPid?: number
  tmpDir: string
}

const live = new Set<Tracked>()
let exitHookInstalled = false

function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const t of live) {
      // Synchronous best effort; the wrapper would also notice its stdin closing.
      if (t.registryPid !== undefined) {
        try {
          process.kill(t.registryPid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
      try {
        t.child.kill('SIGKILL')
      } catch {
        // already gone
      }
      try {
        rmSync(t.tmpDir, { recursive: true, force: true })
      } catch {
        // ignore
      }
    }
    live.clear()
  })
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      if (addr === null || typeof addr === 'string') {
        srv.close()
        reject(new Error('could not determine a free port'))
        return
      }
      const port = addr.port
      srv.close(() => resolve(port))
    })
  })
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileP(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024 })
    return stdout
  } catch (e) {
    const err = e as Error & { stderr?: string }
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${err.stderr ?? ''}`)
  }
}

export async function makeCerts(
  dir: string
): Promise<{ caFile: string; caDir: string; cert: string; key: string }> {
  const caDir = path.join(dir, 'ca')
  const serverDir = path.join(dir, 'server')
  await mkdir(caDir)
  await mkdir(serverDir)
  const caKey = path.join(serverDir, 'ca.key')
  const caFile = path.join(caDir, 'ca.crt')
  const key = path.join(serverDir, 'server.key')
  const csr = path.join(serverDir, 'server.csr')
  const cert = path.join(serverDir, 'server.crt')
  const ext = path.join(serverDir, 'server.ext')
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']
  await run('openssl', [
    'req',
    '-x509',
    ...ecKey,
    '-nodes',
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '2',
    '-subj',
    '/CN=multiarch-merge test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign'
  ])
  await run('openssl', [
    'req',
    '-new',
    ...ecKey,
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    '/CN=127.0.0.1'
  ])
  await writeFile(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ''
    ].join('\n')
  )
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    caFile,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '2',
    '-extfile',
    ext
  ])
  return { caFile, caDir, cert, key }
}

/** GET /v2/ once; resolves with the status code, rejects on connection errors. */
function probe(url: string, ca?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const u = new URL('/v2/', url)
    const mod = u.protocol === 'https:' ? https : http
    const req = mod.request(u, { method: 'GET', ca, timeout: 2000, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error('probe timeout')))
    req.on('error', reject)
    req.end()
  })
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

function yamlString(s: string): string {
  return JSON.stringify(s) // JSON strings are valid YAML double-quoted scalars
}

async function readLog(logFile: string): Promise<string> {
  try {
    return await readFile(logFile, 'utf8')
  } catch {
    return '(no log)'
  }
}

// sh wrapper ($1 config, $2 log file, $3 temp dir). Starts the registry and prints 'pid N'; prints
// 'exit N' when the registry ends (so the parent notices a failed start). A reader subshell blocks
// on our stdin and SIGTERMs the registry when it closes - on stop() or when the parent process dies,
// even by SIGKILL. The wrapper ends (after removing the temp dir) only once both happened.
const WRAPPER = [
  'docker-registry serve "$1" >>"$2" 2>&1 </dev/null &',
  'p=$!',
  // The parent may be gone when we write below: get EPIPE, not death by SIGPIPE.
  "trap '' PIPE",
  'echo "pid $p"',
  'exec 3<&0',
  '(while read -r _l <&3; do :; done; kill -TERM "$p" 2>/dev/null) </dev/null &',
  'exec 3<&-',
  'wait "$p"',
  'echo "exit $?"',
  'wait',
  'rm -rf "$3"'
].join('\n')

/** Run fn while holding a ref'd handle: the child and its pipes are unref'd, so without this a
 * plain script (no jest worker IPC channel) would exit while awaiting them. */
async function keepingAlive<T>(fn: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 1 << 30)
  try {
    return await fn()
  } finally {
    clearInterval(timer)
  }
}

async function startOnce(opts: RegistryOptions): Promise<TestRegistry> {
  return keepingAlive(() => startOnceInner(opts))
}

async function startOnceInner(opts: RegistryOptions): Promise<TestRegistry> {
  installExitHook()
  const tmpDir = await mkdtemp(path.join(os.tmpdir(), 'mam-registry-'))
  const tracked: Tracked = {
    child: undefined as unknown as ChildProcess,
    exited: Promise.resolve(),
    tmpDir
  }
  try {
    const storageDir = path.join(tmpDir, 'storage')
    await mkdir(storageDir)
    const logFile = path.join(tmpDir, 'registry.log')
    await writeFile(logFile, '')
    const configFile = path.join(tmpDir, 'config.yml')
    const port = await freePort()
    const host = `127.0.0.1:${port}`

    const lines = [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  formatter: text',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${yamlString(storageDir)}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
      'http:',
      `  addr: ${yamlString(host)}`,
      '  secret: multiarch-merge-test-secret'
    ]
    let certs: Awaited<ReturnType<typeof makeCerts>> | undefined
    if (opts.tls) {
      certs = await makeCerts(tmpDir)
      lines.push(
        '  tls:',
        `    certificate: ${yamlString(certs.cert)}`,
        `    key: ${yamlString(certs.key)}`
      )
    }
    if (opts.htpasswd) {
      const htpasswdFile = path.join(tmpDir, 'htpasswd')
      const entry = await run('htpasswd', ['-Bbn', opts.htpasswd.user, opts.htpasswd.password])
      await writeFile(htpasswdFile, entry.trim() + '\n')
      lines.push(
        'auth:',
        '  htpasswd:',
        '    realm: multiarch-merge-test',
        `    path: ${yamlString(htpasswdFile)}`
      )
    }
    if (opts.token) {
      if (opts.htpasswd) throw new Error('startRegistry: choose htpasswd or token auth, not both')
      lines.push(
        'auth:',
        '  token:',
        `    realm: ${yamlString(opts.token.realm)}`,
        `    service: ${yamlString(opts.token.service)}`,
        `    issuer: ${yamlString(opts.token.issuer)}`,
        `    rootcertbundle: ${yamlString(opts.token.rootCertBundle)}`
      )
    }
    await writeFile(configFile, lines.join('\n') + '\n')

    const child = spawn('sh', ['-c', WRAPPER, 'mam-registry', configFile, logFile, tmpDir], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // Registry env overrides (REGISTRY_*) from the outer environment would silently change config.
      env: Object.fromEntries<string | undefined>(
        Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_'))
      )
    })
    tracked.child = child
    tracked.exited = new Promise((resolve) => child.once('exit', () => resolve()))
    live.add(tracked)
    // Don't keep the jest worker alive because of these handles (see keepingAlive).
    child.unref()
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      ;(stream as unknown as { unref?: () => void } | null)?.unref?.()
    }
    child.stdin.on('error', () => {})

    let wrapperErr = ''
    child.stderr.on('data', (d: Buffer) => (wrapperErr += d.toString()))
    let out = ''
    let registryExited = false
    const pidPromise = new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        const pid = /^pid (\d+)$/m.exec(out)
        if (pid) resolve(Number(pid[1]))
        if (/^exit \d+$/m.test(out)) {
          registryExited = true
          tracked.registryPid = undefined
        }
      })
      child.on('error', reject)
      void tracked.exited.then(() => reject(new Error(`registry wrapper exited: ${wrapperErr}`)))
    })
    const registryPid = await pidPromise
    if (!registryExited) tracked.registryPid = registryPid

    const url = `${opts.tls ? 'https' : 'http'}://${host}`
    const ca = certs ? await readFile(certs.caFile, 'utf8') : undefined
    const deadline = Date.now() + 15000
    let lastErr = ''
    for (;;) {
      if (registryExited) {
        const log = await readLog(logFile)
        throw new RegistryStartError(
          `docker-registry exited during startup.\n${log}${wrapperErr}`,
          log
        )
      }
      try {
        const status = await probe(url, ca)
        if (status === 200 || status === 401) break
        lastErr = `GET /v2/ -> ${status}`
      } catch (e) {
        lastErr = (e as Error).message
      }
      if (Date.now() > deadline) {
        const log = await readLog(logFile)
        throw new RegistryStartError(
          `docker-registry did not answer on ${url}/v2/ within 15s (${lastErr}).\n${log}${wrapperErr}`,
          log
        )
      }
      await sleep(50)
    }

    let stopped: Promise<void> | undefined
    const stop = (): Promise<void> => {
      stopped ??= keepingAlive(async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.stdin.end()
          const timer = setTimeout(() => {
            if (tracked.registryPid !== undefined) {
              try {
                process.kill(tracked.registryPid, 'SIGKILL')
              } catch {
                // gone
              }
            }
            child.kill('SIGKILL')
          }, 5000)
          await tracked.exited
          clearTimeout(timer)
        }
        live.delete(tracked)
        await rm(tmpDir, { recursive: true, force: true })
      })
      return stopped
    }

    return {
      host,
      url,
      storageDir,
      caFile: certs?.caFile,
      caDir: certs?.caDir,
      auth: opts.htpasswd ? { ...opts.htpasswd } : undefined,
      logFile,
      stop
    }
  } catch (e) {
    // Tear down whatever was started.
    if (tracked.child) {
      tracked.child.stdin?.end()
      if (tracked.child.exitCode === null && tracked.child.signalCode === null) {
        await tracked.exited
      }
    }
    live.delete(tracked)
    await rm(tmpDir, { recursive: true, force: true })
    throw e
  }
}

class RegistryStartError extends Error {
  constructor(
    message: string,
    readonly log: string
  ) {
    super(message)
  }
}

/**
 * Start a registry on a free 127.0.0.1 port. Retries (new port) if the port was grabbed between
 * probing it and the registry binding it.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts)
    } catch (e) {
      if (attempt < 3 && e instanceof RegistryStartError && /address already in use/i.test(e.log)) {
        continue
      }
      throw e
    }
  }
}

/**
 * Relative path (POSIX separators) -> 'sha256:<hex>' of the content, for every regular file under
 * dir (recursively). Compare two snapshots to assert that nothing in the registry storage changed.
 */
export async function snapshotStorage(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true })
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    for (const ent of entries) {
      const relPath = rel === '' ? ent.name : `${rel}/${ent.name}`
      if (ent.isDirectory()) {
        await walk(relPath)
      } else if (ent.isFile()) {
        const content = await readFile(path.join(dir, relPath))
        out.set(relPath, `sha256:${createHash('sha256').update(content).digest('hex')}`)
      } else if (ent.isSymbolicLink()) {
        out.set(relPath, 'symlink')
      }
    }
  }
  await walk('')
  return out
}
