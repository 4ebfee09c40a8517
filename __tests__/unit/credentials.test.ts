// Where credentials come from: inputs, docker config (auths, credHelpers, credsStore) and the
// GitHub token, in that order; credential helpers run as real programs on PATH.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import {
  configCredential,
  dockerConfigCredential,
  readDockerConfig,
  runCredentialHelper,
  StaticCredentials,
  type Credential,
  type DockerConfig
} from '../../src/registry/credentials.js'

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
