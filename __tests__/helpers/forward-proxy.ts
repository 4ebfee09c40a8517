// Test helper: a real forward proxy, Debian's tinyproxy, on a free 127.0.0.1 port. Its log lists
// every request it was sent ("CONNECT 127.0.0.1:5000", "GET http://127.0.0.1:5000/v2/"), which is
// how tests prove traffic went through it. A test reads that list only once tinyproxy has logged
// a marker request sent after everything before it was answered (requests()): tinyproxy logs a
// request line as it reads it, before answering, so every earlier request is in the log by then.
//
// As with the registry helper, tinyproxy runs under a `sh` wrapper that holds a pipe from this
// process and kills tinyproxy when the pipe closes, so no proxy outlives the jest worker.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

export interface ForwardProxyOptions {
  /** Ports CONNECT may reach (tinyproxy's ConnectPort); every port when not given. */
  connectPorts?: number[]
  /** Proxy-Authorization Basic credentials tinyproxy requires (its BasicAuth). */
  basicAuth?: { user: string; password: string }
}

export interface ForwardProxy {
  /** 'http://127.0.0.1:PORT', without credentials. */
  url: string
  port: number
  /** 'http://user:password@127.0.0.1:PORT', with basicAuth. */
  urlWithAuth?: string
  /**
   * Request lines tinyproxy logged since start or the last clear(): "METHOD TARGET", read once
   * a marker request sent now shows in the log (every request answered before this call is
   * then in it), waiting 10 s at most.
   */
  requests(): Promise<string[]>
  clear(): Promise<void>
  log(): Promise<string>
  stop(): Promise<void>
}

/** A port nothing listens on (bound, then released): for tinyproxy to listen on. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
}

/**
 * A 127.0.0.1 port where a connection is refused (ECONNREFUSED) until release(), and that
 * nothing else can take meanwhile: the local end of a connection this process holds open. No
 * socket listens on it, and the port stays bound, so no listen(0) elsewhere is given it.
 */
export async function refusingPort(): Promise<{ port: number; release(): Promise<void> }> {
  const accepted: net.Socket[] = []
  const server = net.createServer((s) => accepted.push(s.on('error', () => {})))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1')
  client.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    client.once('connect', resolve)
    client.once('error', reject)
  })
  const port = client.localPort
  if (port === undefined) throw new Error('the holding connection has no local port')
  return {
    port,
    release: async () => {
      client.destroy()
      accepted.forEach((s) => s.destroy())
      await new Promise<void>((r) => server.close(() => r()))
    }
  }
}

// $1 config. Prints 'pid N'; kills tinyproxy when stdin closes (stop(), or this process dying).
const WRAPPER = [
  'tinyproxy -d -c "$1" </dev/null >/dev/null 2>&1 &',
  'p=$!',
  "trap '' PIPE",
  'echo "pid $p"',
  // A background list's stdin is /dev/null: the reader gets ours through fd 3.
  'exec 3<&0',
  '(while read -r _l <&3; do :; done; kill -TERM "$p" 2>/dev/null) </dev/null &',
  'exec 3<&-',
  'wait "$p"',
  'echo "exit $?"'
].join('\n')

const live = new Set<ChildProcess>()
process.on('exit', () => live.forEach((c) => c.kill('SIGKILL')))

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

async function startOnce(opts: ForwardProxyOptions): Promise<ForwardProxy | undefined> {
  // tinyproxy's config grammar takes only these characters in BasicAuth (others: exit 70).
  const { user, password } = opts.basicAuth ?? {}
  if ([user, password].some((s) => s !== undefined && !/^[\w.-]+$/.test(s)))
    throw new Error('tinyproxy BasicAuth: use letters, digits, "-", "_" and "." only')
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mam-tinyproxy-'))
  const logFile = path.join(dir, 'tinyproxy.log')
  const port = await freePort()
  const lines = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    'Timeout 60',
    `LogFile "${logFile}"`,
    // Connect level logs each connection and its request line, nothing more.
    'LogLevel Connect',
    'MaxClients 200',
    'Allow 127.0.0.1',
    'DisableViaHeader Yes',
    ...(opts.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
    ...(opts.basicAuth ? [`BasicAuth ${opts.basicAuth.user} ${opts.basicAuth.password}`] : [])
  ]
  const config = path.join(dir, 'tinyproxy.conf')
  await writeFile(config, lines.join('\n') + '\n')
  await writeFile(logFile, '')

  const child = spawn('sh', ['-c', WRAPPER, 'mam-tinyproxy', config], {
    stdio: ['pipe', 'pipe', 'ignore']
  })
  live.add(child)
  child.stdin.on('error', () => {})
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end()
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }
    live.delete(child)
    await rm(dir, { recursive: true, force: true })
  }

  const deadline = Date.now() + 10_000
  while (!(await canConnect(port))) {
    if (/^exit \d+$/m.test(out)) {
      // Most likely the port was taken between choosing it and tinyproxy binding it.
      await stop()
      return undefined
    }
    if (Date.now() > deadline) {
      const log = await readFile(logFile, 'utf8').catch(() => '')
      await stop()
      throw new Error(`tinyproxy did not listen on 127.0.0.1:${port} within 10 s\n${log}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
  // Connections from the readiness probe are logged too: requests count from here.
  let from = 0
  let marks = 0
  const log = (): Promise<string> => readFile(logFile, 'utf8')
  /** The log up to the line of a marker request sent now (tinyproxy answers it 400 itself). */
  const logged = async (): Promise<string> => {
    const mark = `/${MARK}-${++marks}`
    await sendMark(port, mark)
    const line = `: GET ${mark} `
    const until = Date.now() + 10_000
    for (;;) {
      const text = await log()
      const at = text.indexOf(line, from)
      if (at >= 0) return text.slice(0, text.indexOf('\n', at) + 1 || text.length)
      if (Date.now() > until)
        throw new Error(`tinyproxy did not log the marker ${mark} within 10 s\n${text.slice(from)}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  const requests = async (): Promise<string[]> =>
    [...(await logged()).slice(from).matchAll(/Request \(file descriptor \d+\): (\S+ \S+)/g)]
      .map((m) => m[1])
      .filter((l) => !l.startsWith(`GET /${MARK}-`))
  const clear = async (): Promise<void> => {
    from = (await logged()).length
  }
  await clear()
  const url = `http://127.0.0.1:${port}`
  const auth = opts.basicAuth
  return {
    url,
    port,
    urlWithAuth: auth
      ? `http://${encodeURIComponent(auth.user)}:${encodeURIComponent(auth.password)}@127.0.0.1:${port}`
      : undefined,
    requests,
    clear,
    log,
    stop
  }
}

/** Marker requests' paths start with this (never a request of the code under test). */
const MARK = 'mam-forward-proxy-mark'

/**
 * Sends `GET <path>` (not an absolute URI: tinyproxy answers it itself, without going upstream)
 * and reads the answer, whatever it is.
 */
function sendMark(port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.end(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)
    })
    s.on('data', () => {})
    s.on('error', reject)
    s.on('close', () => resolve())
  })
}

export async function startForwardProxy(opts: ForwardProxyOptions = {}): Promise<ForwardProxy> {
  for (let attempt = 1; attempt <= 3; attempt++) {
    const proxy = await startOnce(opts)
    if (proxy) return proxy
  }
  throw new Error('tinyproxy exited at start three times (is /usr/bin/tinyproxy installed?)')
}
