// Where credentials come from: inputs, scoped docker configs (docker/login-action's scope input),
// docker config (auths, credHelpers, credsStore) and the GitHub token, in that order; credential
// helpers run as real programs on PATH.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { UserError } from '../../src/errors.js'
import {
  configCredential,
  dockerConfigCredential,
  readDockerConfig,
  runCredentialHelper,
  StaticCredentials,
  type Credential,
  type DockerConfig
} from '../../src/registry/credentials.js'
import {
  buildxConfigDir,
  describeScope,
  parseScopedConfigKey,
  readScopedConfigs,
  selectScopedConfig,
  type ScopedConfig
} from '../../src/registry/scoped-credentials.js'

const b64 = (s: string): string => Buffer.from(s).toString('base64')

describe('docker config auths', () => {
  it('reads auth, username/password and identitytoken entries', () => {
    const cfg: DockerConfig = {
      auths: {
        'a.io': { auth: b64('alice:pa:ss') },
        'b.io': { username: 'bob', password: 'pw' },
        'c.io': { auth: b64('carol:'), identitytoken: 'idt' },
        'd.io': {}
      }
    }
    expect(dockerConfigCredential(cfg, 'a.io')).toEqual({ username: 'alice', password: 'pa:ss' })
    expect(dockerConfigCredential(cfg, 'b.io')).toEqual({ username: 'bob', password: 'pw' })
    expect(dockerConfigCredential(cfg, 'c.io')).toEqual({ identityToken: 'idt', username: 'carol' })
    expect(dockerConfigCredential(cfg, 'd.io')).toBeUndefined()
    expect(dockerConfigCredential({}, 'a.io')).toBeUndefined()
  })

  it('finds Docker Hub and legacy keys the way docker does', () => {
    const hub = (key: string): DockerConfig => ({ auths: { [key]: { auth: b64('me:hub') } } })
    for (const key of ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io']) {
      expect(dockerConfigCredential(hub(key), 'docker.io')).toEqual({
        username: 'me',
        password: 'hub'
      })
    }
    const legacy: DockerConfig = {
      auths: {
        'https://r.io/v2/': { auth: b64('old:1') },
        'http://localhost:5000': { auth: b64('local:2') }
      }
    }
    expect(dockerConfigCredential(legacy, 'r.io')).toEqual({ username: 'old', password: '1' })
    expect(dockerConfigCredential(legacy, 'localhost:5000')).toEqual({
      username: 'local',
      password: '2'
    })
    expect(dockerConfigCredential(legacy, 'localhost')).toBeUndefined()
    // The registry's own key wins over a legacy spelling of it.
    const both: DockerConfig = {
      auths: { 'https://r.io': { auth: b64('legacy:1') }, 'r.io': { auth: b64('own:2') } }
    }
    expect(dockerConfigCredential(both, 'r.io')).toEqual({ username: 'own', password: '2' })
  })

  it('reads $DOCKER_CONFIG/config.json, and nothing when it is absent', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mm-cfg-'))
    try {
      expect(readDockerConfig({ DOCKER_CONFIG: dir })).toEqual({})
      await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'x' }))
      expect(readDockerConfig({ DOCKER_CONFIG: dir })).toEqual({ credsStore: 'x' })
      expect(readDockerConfig({ HOME: dir })).toEqual({})
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('credential helpers in the docker config', () => {
  const calls: string[] = []
  const runHelper = (helper: string, registry: string): Promise<Credential | undefined> => {
    calls.push(`${helper} ${registry}`)
    if (helper === 'none') return Promise.resolve(undefined)
    return Promise.resolve({ username: helper, password: `from-${helper}` })
  }

  it('uses credHelpers for its registries, credsStore for the rest, auths after a helper that knows nothing', async () => {
    const cfg: DockerConfig = {
      credsStore: 'store',
      credHelpers: { 'gcr.io': 'gcloud', 'https://index.docker.io/v1/': 'hub', 'empty.io': 'none' },
      auths: { 'empty.io': { auth: b64('file:pw') }, 'store.io': { auth: b64('file:pw') } }
    }
    calls.length = 0
    expect(await configCredential(cfg, 'gcr.io', runHelper)).toEqual({
      username: 'gcloud',
      password: 'from-gcloud'
    })
    expect(await configCredential(cfg, 'docker.io', runHelper)).toMatchObject({ username: 'hub' })
    expect(await configCredential(cfg, 'store.io', runHelper)).toMatchObject({ username: 'store' })
    expect(await configCredential(cfg, 'empty.io', runHelper)).toEqual({
      username: 'file',
      password: 'pw'
    })
    expect(calls).toEqual(['gcloud gcr.io', 'hub docker.io', 'store store.io', 'none empty.io'])
    // Without any helper, auths alone.
    expect(await configCredential({ auths: cfg.auths }, 'store.io', runHelper)).toEqual({
      username: 'file',
      password: 'pw'
    })
    expect(calls).toHaveLength(4)
  })

  it('puts explicit inputs first, the docker config next, the GitHub token last (ghcr.io only)', async () => {
    const explicit = new Map<string, Credential>([['ghcr.io', { username: 'in', password: 'put' }]])
    const config: DockerConfig = {
      auths: { 'ghcr.io': { auth: b64('cfg:1') }, 'quay.io': { auth: b64('cfg:2') } }
    }
    const all = new StaticCredentials({ explicit, config, githubToken: 'ght' })
    expect(await all.get('ghcr.io')).toEqual({ username: 'in', password: 'put' })
    expect(await all.get('quay.io')).toEqual({ username: 'cfg', password: '2' })
    expect(await all.get('other.io')).toBeUndefined()
    const noInputs = new StaticCredentials({ config, githubToken: 'ght' })
    expect(await noInputs.get('ghcr.io')).toEqual({ username: 'cfg', password: '1' })
    const tokenOnly = new StaticCredentials({ config: {}, githubToken: 'ght' })
    expect(await tokenOnly.get('ghcr.io')).toEqual({ username: 'x-access-token', password: 'ght' })
    expect(await tokenOnly.get('quay.io')).toBeUndefined()
  })

  it('runs a helper once per registry, however many ask at once', async () => {
    calls.length = 0
    const store = new StaticCredentials({ config: { credsStore: 'store' }, runHelper })
    const got = await Promise.all([store.get('a.io'), store.get('a.io'), store.get('b.io')])
    await store.get('a.io')
    expect(got.map((c) => c?.username)).toEqual(['store', 'store', 'store'])
    expect(calls.sort()).toEqual(['store a.io', 'store b.io'])
  })
})

describe('docker-credential-<name> get', () => {
  let bin: string
  let savedPath: string | undefined
  const SECRET = 's3cr3t-from-helper'

  const helper = async (name: string, script: string): Promise<void> => {
    const file = join(bin, `docker-credential-${name}`)
    await writeFile(file, `#!/bin/sh\n${script}\n`)
    await chmod(file, 0o755)
  }

  beforeAll(async () => {
    bin = await mkdtemp(join(tmpdir(), 'mm-helpers-'))
    savedPath = process.env.PATH
    process.env.PATH = `${bin}${delimiter}${process.env.PATH ?? ''}`
    // Records its stdin and whether it could see the action's inputs, then answers.
    await helper(
      'ok',
      `read -r url; echo "$1 $url \${INPUT_PASSWORD:-no-inputs}" >> "${bin}/ok.log"\n` +
        `printf '{"ServerURL":"%s","Username":"robot","Secret":"${SECRET}"}' "$url"`
    )
    await helper('token', `cat >/dev/null; echo '{"Username":"<token>","Secret":"${SECRET}"}'`)
    await helper(
      'missing',
      `cat >/dev/null; echo 'credentials not found in native keychain'; exit 1`
    )
    await helper('broken', `cat >/dev/null; echo 'keychain is locked' >&2; exit 3`)
    await helper('garbled', `cat >/dev/null; echo 'Secret: ${SECRET}'`)
    await helper('slow', 'exec sleep 5')
  })
  afterAll(async () => {
    process.env.PATH = savedPath
    await rm(bin, { recursive: true, force: true })
  })

  it('passes the server address on stdin and reads the JSON answer', async () => {
    process.env.INPUT_PASSWORD = 'input-secret'
    try {
      expect(await runCredentialHelper('ok', 'r.io:5000')).toEqual({
        username: 'robot',
        password: SECRET
      })
      expect(await runCredentialHelper('ok', 'docker.io')).toMatchObject({ username: 'robot' })
    } finally {
      delete process.env.INPUT_PASSWORD
    }
    // Docker Hub by its historical key; the helper never sees the action's inputs.
    expect(await readFile(join(bin, 'ok.log'), 'utf8')).toBe(
      'get r.io:5000 no-inputs\nget https://index.docker.io/v1/ no-inputs\n'
    )
  })

  it('reads the user name <token> as an identity token', async () => {
    expect(await runCredentialHelper('token', 'acr.io')).toEqual({ identityToken: SECRET })
  })

  it('takes "credentials not found" as no credentials', async () => {
    expect(await runCredentialHelper('missing', 'r.io')).toBeUndefined()
  })

  it('names the helper and the registry when it fails, and never shows the secret', async () => {
    await expect(runCredentialHelper('broken', 'r.io')).rejects.toThrow(
      'credential helper docker-credential-broken failed for registry r.io: it exited with code 3 (its output is not shown: it may hold a secret)'
    )
    await expect(runCredentialHelper('broken', 'r.io')).rejects.not.toThrow('keychain is locked')
    const garbled = runCredentialHelper('garbled', 'r.io')
    await expect(garbled).rejects.toThrow(
      'credential helper docker-credential-garbled failed for registry r.io: its answer is not JSON'
    )
    await expect(garbled).rejects.not.toThrow(SECRET)
    await expect(runCredentialHelper('absent', 'r.io')).rejects.toThrow(
      'credential helper docker-credential-absent failed for registry r.io: docker-credential-absent is not on PATH'
    )
    await expect(runCredentialHelper('slow', 'r.io', 300)).rejects.toThrow(
      'credential helper docker-credential-slow failed for registry r.io: no answer within 0.3 s'
    )
  })
})

describe('scoped docker configs (docker/login-action scope, read as buildx reads them)', () => {
  const temps: string[] = []
  const temp = async (): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), 'mm-scoped-'))
    temps.push(dir)
    return dir
  }
  afterAll(async () => {
    await Promise.all(temps.map((d) => rm(d, { recursive: true, force: true })))
  })

  /** Writes `<root>/<key>/config.json` as `docker --config <root>/<key> login` would. */
  const write = async (root: string, key: string, config: unknown): Promise<string> => {
    const dir = join(root, ...key.split('/'))
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'config.json'), JSON.stringify(config))
    return join(dir, 'config.json')
  }
  const auths = (host: string, user: string, secret = `${user}-secret`): DockerConfig => ({
    auths: { [host]: { auth: b64(`${user}:${secret}`) } }
  })
  /** A ScopedConfig as parsed from a folder key, for selection tests. */
  const cfg = (key: string): ScopedConfig => ({
    file: `/x/${key}/config.json`,
    ...parseScopedConfigKey(key)!
  })
  const pick = (
    configs: ScopedConfig[],
    registry: string,
    scopes?: string[]
  ): string | undefined => {
    const c = selectScopedConfig(configs, registry, scopes)
    return c && describeScope(c)
  }

  it('reads a folder key as <registry>[/<repository>][@<actions>], Docker Hub as registry-1.docker.io', () => {
    const parsed = (key: string): unknown => {
      const p = parseScopedConfigKey(key)
      return p && { ...p, actions: [...p.actions] }
    }
    expect(parsed('ghcr.io')).toEqual({ registry: 'ghcr.io', actions: [] })
    expect(parsed('ghcr.io/acme/app')).toEqual({
      registry: 'ghcr.io',
      repository: 'acme/app',
      actions: []
    })
    expect(parsed('ghcr.io/acme/app@pull,push')).toEqual({
      registry: 'ghcr.io',
      repository: 'acme/app',
      actions: ['pull', 'push']
    })
    // login-action's scope "@push" (no repository) is the registry folder with a suffix.
    expect(parsed('registry-1.docker.io@push')).toEqual({
      registry: 'docker.io',
      actions: ['push']
    })
    expect(parsed('registry-1.docker.io/acme/app')).toMatchObject({
      registry: 'docker.io',
      repository: 'acme/app'
    })
    expect(parsed('localhost:5000/x@y,z')).toEqual({
      registry: 'localhost:5000',
      repository: 'x',
      actions: ['y', 'z']
    })
    expect(parsed('ghcr.io/@push')).toEqual({ registry: 'ghcr.io', actions: ['push'] })
    expect(parsed('ghcr.io/acme/app@')).toEqual({
      registry: 'ghcr.io',
      repository: 'acme/app',
      actions: []
    })
    expect(parsed('')).toBeUndefined()
    expect(parsed('@push')).toBeUndefined()
    expect(describeScope(parseScopedConfigKey('registry-1.docker.io/acme/app@push')!)).toBe(
      'docker.io/acme/app@push'
    )
  })

  it('finds the buildx folder: $BUILDX_CONFIG, else $DOCKER_CONFIG/buildx, else ~/.docker/buildx', () => {
    expect(buildxConfigDir({ BUILDX_CONFIG: '/b', DOCKER_CONFIG: '/d', HOME: '/h' })).toBe('/b')
    expect(buildxConfigDir({ DOCKER_CONFIG: '/d', HOME: '/h' })).toBe('/d/buildx')
    expect(buildxConfigDir({ HOME: '/h' })).toBe('/h/.docker/buildx')
  })

  it('lists every config.json under <buildx>/config, in DOCKER_CONFIG and BUILDX_CONFIG layouts', async () => {
    const docker = await temp()
    const root = join(docker, 'buildx', 'config')
    await write(root, 'ghcr.io/acme/app@push', auths('ghcr.io', 'a'))
    await write(root, 'registry-1.docker.io@push', auths('https://index.docker.io/v1/', 'b'))
    await write(root, 'registry-1.docker.io/acme/app', auths('https://index.docker.io/v1/', 'c'))
    await mkdir(join(root, 'quay.io', 'empty'), { recursive: true })
    await writeFile(join(root, 'quay.io', 'notes.txt'), 'not a config')
    await writeFile(join(root, 'config.json'), '{}') // no registry: not for anything
    const listed = (env: NodeJS.ProcessEnv): string[] =>
      readScopedConfigs(env).map((c) => `${describeScope(c)} ${c.file}`)
    expect(listed({ DOCKER_CONFIG: docker })).toEqual([
      `ghcr.io/acme/app@push ${join(root, 'ghcr.io', 'acme', 'app@push', 'config.json')}`,
      `docker.io/acme/app ${join(root, 'registry-1.docker.io', 'acme', 'app', 'config.json')}`,
      `docker.io@push ${join(root, 'registry-1.docker.io@push', 'config.json')}`
    ])
    // BUILDX_CONFIG moves the whole tree: DOCKER_CONFIG/buildx is then not read.
    const buildx = await temp()
    await write(join(buildx, 'config'), 'ghcr.io/acme/other@pull', auths('ghcr.io', 'd'))
    expect(listed({ DOCKER_CONFIG: docker, BUILDX_CONFIG: buildx })).toEqual([
      `ghcr.io/acme/other@pull ${join(buildx, 'config', 'ghcr.io', 'acme', 'other@pull', 'config.json')}`
    ])
    expect(readScopedConfigs({ DOCKER_CONFIG: join(docker, 'absent') })).toEqual([])
  })

  it('chooses for one repository as buildx does: its repository first, then more actions', () => {
    const all = [
      cfg('ghcr.io'),
      cfg('ghcr.io@push'),
      cfg('ghcr.io/acme/app'),
      cfg('ghcr.io/acme/app@pull'),
      cfg('ghcr.io/acme/app@push'),
      cfg('quay.io/acme/app@push')
    ]
    const push = ['repository:acme/app:pull,push']
    expect(pick(all, 'ghcr.io', push)).toBe('ghcr.io/acme/app@push')
    expect(pick([...all, cfg('ghcr.io/acme/app@pull,push')], 'ghcr.io', push)).toBe(
      'ghcr.io/acme/app@pull,push'
    )
    // Read-only credentials are not chosen to push with (buildx would take @pull for pull,push).
    expect(pick([cfg('ghcr.io/acme/app@pull')], 'ghcr.io', push)).toBeUndefined()
    expect(pick([cfg('ghcr.io/acme/app@pull'), cfg('ghcr.io/acme/app')], 'ghcr.io', push)).toBe(
      'ghcr.io/acme/app'
    )
    expect(pick(all, 'ghcr.io', ['repository:acme/app:pull'])).toBe('ghcr.io/acme/app@pull')
    // Another repository: the registry-wide configs only; an exact name, never a prefix.
    expect(pick(all, 'ghcr.io', ['repository:acme/other:pull,push'])).toBe('ghcr.io@push')
    expect(pick(all, 'ghcr.io', ['repository:acme/other:pull'])).toBe('ghcr.io')
    expect(pick([cfg('ghcr.io/acme')], 'ghcr.io', ['repository:acme/app:pull'])).toBeUndefined()
    expect(pick([cfg('ghcr.io/acme/app@push')], 'ghcr.io', ['repository:acme/app:pull'])).toBe(
      undefined
    )
    expect(pick(all, 'docker.io', push)).toBeUndefined()
    expect(pick(all, 'quay.io', push)).toBe('quay.io/acme/app@push')
  })

  it('chooses for a token covering several repositories by the ones pushed to', () => {
    const target = 'repository:acme/app:pull,push'
    const source = 'repository:acme/build:pull'
    const both = [cfg('ghcr.io/acme/app@push'), cfg('ghcr.io/acme/build@pull')]
    expect(pick(both, 'ghcr.io', [target, source])).toBe('ghcr.io/acme/app@push')
    expect(pick(both, 'ghcr.io', [`${target} ${source}`])).toBe('ghcr.io/acme/app@push')
    // Nothing covers the target: the unscoped config, not the source's read-only one.
    expect(pick([cfg('ghcr.io/acme/build@pull')], 'ghcr.io', [target, source])).toBeUndefined()
    // Two targets wanting different credentials cannot share one token.
    const twoTargets = [target, 'repository:acme/web:pull,push']
    expect(pick([...both, cfg('ghcr.io/acme/web@push')], 'ghcr.io', twoTargets)).toBeUndefined()
    expect(pick([cfg('ghcr.io@push')], 'ghcr.io', twoTargets)).toBe('ghcr.io@push')
    // Pulls only: the sources must agree.
    const sources = [source, 'repository:acme/base:pull']
    expect(pick(both, 'ghcr.io', sources)).toBeUndefined()
    expect(pick([cfg('ghcr.io@pull')], 'ghcr.io', sources)).toBe('ghcr.io@pull')
  })

  it("without scopes, uses the registry's scoped config only when it is the only one", () => {
    const one = [cfg('ghcr.io/acme/app@push'), cfg('quay.io/x')]
    expect(pick(one, 'ghcr.io')).toBe('ghcr.io/acme/app@push')
    expect(pick(one, 'ghcr.io', [])).toBe('ghcr.io/acme/app@push')
    expect(pick([...one, cfg('ghcr.io@pull')], 'ghcr.io')).toBeUndefined()
    expect(pick(one, 'docker.io')).toBeUndefined()
  })

  it('takes the covering scoped config over config.json, and config.json when none covers', async () => {
    const docker = await temp()
    await writeFile(join(docker, 'config.json'), JSON.stringify(auths('ghcr.io', 'plain')))
    const root = join(docker, 'buildx', 'config')
    await write(root, 'ghcr.io/acme/app@push', auths('ghcr.io', 'pusher'))
    const env = { DOCKER_CONFIG: docker }
    const lines: string[] = []
    const store = new StaticCredentials({
      config: readDockerConfig(env),
      scoped: readScopedConfigs(env),
      githubToken: 'ght',
      log: (l) => lines.push(l)
    })
    expect(await store.get('ghcr.io', ['repository:acme/app:pull,push'])).toEqual({
      username: 'pusher',
      password: 'pusher-secret'
    })
    expect(await store.get('ghcr.io', ['repository:acme/other:pull,push'])).toEqual({
      username: 'plain',
      password: 'plain-secret'
    })
    // Pull-only requests do not match @push.
    expect(await store.get('ghcr.io', ['repository:acme/app:pull'])).toMatchObject({
      username: 'plain'
    })
    // A caller that does not say what for: the registry's only scoped config.
    expect(await store.get('ghcr.io')).toMatchObject({ username: 'pusher' })
    expect(lines).toEqual([
      `credentials for ghcr.io: the scoped docker config ${join(root, 'ghcr.io', 'acme', 'app@push', 'config.json')}`
    ])
    expect(lines.join('\n')).not.toContain('secret')
  })

  it('reads Docker Hub scoped configs from registry-1.docker.io, under BUILDX_CONFIG too', async () => {
    const buildx = await temp()
    const root = join(buildx, 'config')
    // docker login writes Docker Hub under its v1 URL.
    await write(
      root,
      'registry-1.docker.io/acme/app@push',
      auths('https://index.docker.io/v1/', 'hub')
    )
    await write(root, 'registry-1.docker.io@pull', auths('https://index.docker.io/v1/', 'reader'))
    const store = new StaticCredentials({
      config: auths('https://index.docker.io/v1/', 'plain'),
      scoped: readScopedConfigs({ BUILDX_CONFIG: buildx, DOCKER_CONFIG: '/nonexistent' })
    })
    expect(await store.get('docker.io', ['repository:acme/app:pull,push'])).toMatchObject({
      username: 'hub'
    })
    expect(await store.get('docker.io', ['repository:library/alpine:pull'])).toMatchObject({
      username: 'reader'
    })
    expect(await store.get('docker.io', ['repository:acme/web:pull,push'])).toMatchObject({
      username: 'plain'
    })
  })

  it('finds the scoped configs of the environment by itself when given the docker config', async () => {
    const docker = await temp()
    await write(
      join(docker, 'buildx', 'config'),
      'ghcr.io/acme/app@push',
      auths('ghcr.io', 'pusher')
    )
    const saved = {
      DOCKER_CONFIG: process.env.DOCKER_CONFIG,
      BUILDX_CONFIG: process.env.BUILDX_CONFIG
    }
    process.env.DOCKER_CONFIG = docker
    delete process.env.BUILDX_CONFIG
    try {
      // As main.ts builds it.
      const store = new StaticCredentials({ config: readDockerConfig(), githubToken: 'ght' })
      expect(await store.get('ghcr.io', ['repository:acme/app:pull,push'])).toMatchObject({
        username: 'pusher'
      })
      expect(await store.get('ghcr.io', ['repository:acme/web:pull,push'])).toEqual({
        username: 'x-access-token',
        password: 'ght'
      })
      // Without the docker config (tests, inputs only), none are read.
      expect(await new StaticCredentials({}).get('ghcr.io')).toBeUndefined()
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
    }
  })

  it('keeps inputs first, and falls back when a scoped config has nothing for the registry', async () => {
    const root = await temp()
    const file = await write(
      join(root, 'config'),
      'ghcr.io/acme/app@push',
      auths('quay.io', 'other')
    )
    const lines: string[] = []
    const store = new StaticCredentials({
      explicit: new Map([['quay.io', { username: 'in', password: 'put' }]]),
      config: auths('ghcr.io', 'plain'),
      scoped: readScopedConfigs({ BUILDX_CONFIG: root }),
      log: (l) => lines.push(l)
    })
    expect(await store.get('ghcr.io', ['repository:acme/app:pull,push'])).toMatchObject({
      username: 'plain'
    })
    expect(lines).toEqual([
      `the scoped docker config ${file} holds no credentials for ghcr.io: using the unscoped docker config`
    ])
    expect(await store.get('quay.io', ['repository:acme/app:pull,push'])).toEqual({
      username: 'in',
      password: 'put'
    })
  })

  it("runs a scoped config's credential helper, once per registry and config", async () => {
    const root = await temp()
    await write(join(root, 'config'), 'ghcr.io/acme/app@push', { credsStore: 'scoped' })
    const calls: string[] = []
    const store = new StaticCredentials({
      config: { credsStore: 'plain' },
      scoped: readScopedConfigs({ BUILDX_CONFIG: root }),
      runHelper: (helper, registry) => {
        calls.push(`${helper} ${registry}`)
        return Promise.resolve({ username: helper, password: 'pw' })
      }
    })
    const push = ['repository:acme/app:pull,push']
    const got = await Promise.all([
      store.get('ghcr.io', push),
      store.get('ghcr.io', push),
      store.get('ghcr.io', ['repository:acme/app:pull'])
    ])
    expect(got.map((c) => c?.username)).toEqual(['scoped', 'scoped', 'plain'])
    expect(calls.sort()).toEqual(['plain ghcr.io', 'scoped ghcr.io'])
  })

  it('names an unreadable or malformed scoped config by its path, never by its content', async () => {
    const SECRET = 'sup3r-s3cret-in-a-broken-file'
    const root = await temp()
    const base = join(root, 'config')
    const bad = await write(base, 'ghcr.io/acme/app@push', {})
    await writeFile(bad, `{"auths": {"ghcr.io": {"auth": "${SECRET}"`)
    const arr = await write(base, 'quay.io/acme/app@push', {})
    await writeFile(arr, '[]')
    await mkdir(join(base, 'r.io', 'acme', 'app@push'), { recursive: true })
    const dangling = join(base, 'r.io', 'acme', 'app@push', 'config.json')
    await symlink(join(root, 'absent.json'), dangling)
    const store = new StaticCredentials({
      config: auths('ghcr.io', 'plain'),
      scoped: readScopedConfigs({ BUILDX_CONFIG: root })
    })
    const push = ['repository:acme/app:pull,push']
    const broken = store.get('ghcr.io', push)
    await expect(broken).rejects.toThrow(UserError)
    await expect(broken).rejects.toThrow(
      `the scoped docker config ${bad} (credentials for ghcr.io/acme/app@push, as docker/login-action's scope input writes them) is not valid JSON: fix or remove it`
    )
    await expect(broken).rejects.not.toThrow(SECRET)
    await expect(store.get('quay.io', push)).rejects.toThrow(
      `${arr} (credentials for quay.io/acme/app@push, as docker/login-action's scope input writes them) is not a JSON object`
    )
    await expect(store.get('r.io', push)).rejects.toThrow(
      `the scoped docker config ${dangling} (credentials for r.io/acme/app@push, as docker/login-action's scope input writes them) could not be read (ENOENT)`
    )
    // A broken config that does not cover the request is never read.
    expect(await store.get('ghcr.io', ['repository:acme/other:pull,push'])).toMatchObject({
      username: 'plain'
    })
  })
})
