// The command line and release plans, run as users run them: `node dist/cli.js` as a child
// process with no GitHub variables, and the action with INPUT_PLAN; checked against what the
// real registry serves afterwards.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runAction } from '../helpers/action.js'
import { runCli } from '../helpers/cli.js'
import {
  getManifest,
  MT,
  pushAttestationWrapped,
  pushImage,
  type PushedAttestationWrapped,
  type PushedImage
} from '../helpers/oci.js'
import { refuse, startProxy, type TestProxy } from '../helpers/proxy.js'
import { snapshotStorage, startRegistry, type TestRegistry } from '../helpers/registry.js'
import { skopeoInspectRaw } from '../helpers/tools.js'
import { OUTPUT_NAMES } from '../../src/outputs.js'

let a: TestRegistry
let dir: string

beforeAll(async () => {
  a = await startRegistry()
  dir = await mkdtemp(join(tmpdir(), 'mm-cli-test-'))
})
afterAll(async () => {
  await a?.stop()
  await rm(dir, { recursive: true, force: true })
})

interface Sources {
  amd: PushedAttestationWrapped
  arm: PushedImage
}

async function sources(repo: string, seed: string): Promise<Sources> {
  const amd = await pushAttestationWrapped(a, repo, { arch: 'amd64', seed })
  const arm = await pushImage(a, repo, { arch: 'arm64', variant: 'v8', seed })
  return { amd, arm }
}

function refs(repo: string, s: Sources): string[] {
  return [`${a.host}/${repo}@${s.amd.indexDigest}`, `${a.host}/${repo}@${s.arm.digest}`]
}

/** What a tag holds now, or undefined. */
async function held(repo: string, tag: string): Promise<string | undefined> {
  return (await getManifest(a, repo, tag))?.digest
}

/** The platforms of the entries of an index as served. */
async function entryPlatforms(repo: string, tag: string): Promise<string[]> {
  const m = await getManifest(a, repo, tag)
  const index = JSON.parse(m?.body ?? '{}') as {
    manifests: Array<{ platform: { os: string; architecture: string } }>
  }
  return index.manifests.map((d) => `${d.platform.os}/${d.platform.architecture}`)
}

describe('multiarch-merge on the command line', () => {
  it('prints its usage with --help, every input an option, and exits 0', async () => {
    const run = await runCli(['--help'])
    expect(run.code).toBe(0)
    expect(run.stderr).toBe('')
    for (const name of ['tags', 'sources', 'attestations', 'dry-run', 'plan', 'json'])
      expect(run.stdout).toContain(`--${name}`)
  })

  it('exits 2 on a usage error or an invalid input, naming it, with no request to the registry', async () => {
    const s = await sources('cli/usage', 'u')
    const before = await snapshotStorage(a.storageDir)
    const unknown = await runCli([
      '--platform',
      'linux/amd64',
      '-t',
      `${a.host}/cli/usage:1`,
      ...refs('cli/usage', s)
    ])
    expect(unknown.code).toBe(2)
    expect(unknown.stdout).toBe('')
    expect(unknown.stderr).toContain('unknown option --platform (did you mean --platforms?)')
    const invalid = await runCli([
      '--format',
      'zip',
      '-t',
      `${a.host}/cli/usage:1`,
      ...refs('cli/usage', s)
    ])
    expect(invalid.code).toBe(2)
    expect(invalid.stdout).toBe('')
    expect(invalid.stderr).toContain('input format: "zip" is not one of auto, oci, docker')
    // Inputs that cannot go together are found before any request, too.
    const together = await runCli([
      '--preserve-digest',
      '--platforms',
      'linux/amd64',
      '-t',
      `${a.host}/cli/usage:1`,
      refs('cli/usage', s)[0]
    ])
    expect(together.code).toBe(2)
    expect(together.stderr).toMatch(
      /^error: input preserve-digest: .*input platforms \(linux\/amd64\)/m
    )
    const noTags = await runCli(refs('cli/usage', s))
    expect(noTags.code).toBe(2)
    expect(noTags.stderr).toMatch(/input tags: no tag given/)
    expect(await snapshotStorage(a.storageDir)).toEqual(before)
  })

  it('merges with --json: one object with the outputs the action would set, the log on stderr', async () => {
    const s = await sources('cli/app', 'j')
    const run = await runCli([
      '-t',
      `${a.host}/cli/app:1.0`,
      `--tags=${a.host}/cli/app:latest`,
      '--json',
      ...refs('cli/app', s)
    ])
    expect(run.stderr).not.toMatch(/^error/m)
    expect(run.code).toBe(0)
    // Exactly one JSON document on stdout, one line.
    expect(run.stdout.endsWith('\n')).toBe(true)
    expect(run.stdout.trimEnd().split('\n')).toHaveLength(1)
    const o = JSON.parse(run.stdout) as Record<string, string>
    expect(Object.keys(o).sort()).toEqual([...OUTPUT_NAMES].sort())
    const served = await getManifest(a, 'cli/app', '1.0')
    expect(o.digest).toBe(served?.digest)
    expect(await held('cli/app', 'latest')).toBe(o.digest)
    expect(o.manifest).toBe(served?.body)
    expect(o['media-type']).toBe(MT.ociIndex)
    expect(o.images).toBe(`${a.host}/cli/app@${o.digest}`)
    expect(o.tags).toBe(`${a.host}/cli/app:1.0\n${a.host}/cli/app:latest`)
    expect(o.platforms).toBe('linux/amd64,linux/arm64/v8')
    expect(JSON.parse(o['platform-digests'])).toEqual({
      'linux/amd64': s.amd.image.digest,
      'linux/arm64/v8': s.arm.digest
    })
    // A real client reads the same bytes.
    expect((await skopeoInspectRaw(`${a.host}/cli/app:latest`)).toString()).toBe(o.manifest)
    // A plain line per phase, and the result; no workflow commands.
    expect(run.stderr).toMatch(/^Resolve sources\.\.\.$/m)
    expect(run.stderr).toMatch(/^Copy children into target repositories\.\.\.$/m)
    expect(run.stderr).toMatch(/^Push tags\.\.\.$/m)
    expect(run.stderr).toContain(`${o.digest} (linux/amd64, linux/arm64/v8); pushed to`)
    expect(run.stderr).not.toMatch(/^::/m)

    // Without --json, stdout is the digest alone; a rerun pushes nothing.
    const again = await runCli(['-t', `${a.host}/cli/app:1.0`, ...refs('cli/app', s)])
    expect(again.code).toBe(0)
    expect(again.stdout).toBe(`${o.digest}\n`)
    expect(again.stderr).toContain(`already current: ${a.host}/cli/app:1.0`)
  })

  it('takes a password from stdin or the environment, warns when it is on the command line, and never prints it', async () => {
    const secured = await startRegistry({ htpasswd: { user: 'me', password: 'pw-Secr3t-42' } })
    try {
      const img = await pushImage(secured, 'cli/auth', { arch: 'amd64', seed: 'auth' })
      const base = ['-t', `${secured.host}/cli/auth:1`, `${secured.host}/cli/auth@${img.digest}`]
      const stdin = await runCli(['--username', 'me', '--password-stdin', '--verbose', ...base], {
        stdin: 'pw-Secr3t-42\n'
      })
      expect(stdin.stderr).not.toMatch(/warning/)
      expect(stdin.code).toBe(0)
      const env = await runCli(['--username', 'me', ...base], {
        env: { MULTIARCH_MERGE_PASSWORD: 'pw-Secr3t-42' }
      })
      expect(env.code).toBe(0)
      expect(env.stderr).not.toMatch(/warning/)
      const argv = await runCli(['--username', 'me', '--password', 'pw-Secr3t-42', ...base])
      expect(argv.code).toBe(0)
      expect(argv.stderr).toContain(
        'warning: --password on the command line can be read by other users of this machine: use --password-stdin or MULTIARCH_MERGE_PASSWORD instead'
      )
      const wrong = await runCli(['--username', 'me', '--password-stdin', ...base], {
        stdin: 'wrong-pw-99'
      })
      expect(wrong.code).toBe(1)
      expect(wrong.stderr).toMatch(/^error: /m)
      for (const r of [stdin, env, argv, wrong]) {
        expect(r.stderr + r.stdout).not.toContain('pw-Secr3t-42')
        expect(r.stderr + r.stdout).not.toContain('wrong-pw-99')
      }
    } finally {
      await secured.stop()
    }
  })

  it('installs from the npm package as a multiarch-merge command', async () => {
    const exec = promisify(execFile)
    const pack = join(dir, 'pack')
    const prefix = join(dir, 'prefix')
    await exec('npm', ['pack', '--pack-destination', (await mkdtemp(pack)).toString()], {
      env: { ...process.env, npm_config_loglevel: 'error' }
    })
    const packDir = (await readdir(dir)).find((d) => d.startsWith('pack'))
    const tarball = join(dir, packDir ?? '', (await readdir(join(dir, packDir ?? '')))[0])
    // No dependencies to fetch: the bundle is the whole program.
    await exec('npm', ['install', '--global', '--offline', '--prefix', prefix, tarball], {
      env: { ...process.env, npm_config_loglevel: 'error' }
    })
    const bin = join(prefix, 'bin', 'multiarch-merge')
    const version = await runCli(['--version'], { bin })
    expect(version.code).toBe(0)
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
    expect(version.stdout).toBe(`${pkg.version}\n`)
    const img = await pushImage(a, 'cli/installed', { arch: 'amd64', seed: 'npm' })
    const run = await runCli(
      ['-t', `${a.host}/cli/installed:1`, `${a.host}/cli/installed@${img.digest}`],
      { bin }
    )
    expect(run.code).toBe(0)
    expect(run.stdout).toBe(`${await held('cli/installed', '1')}\n`)
  })
})

describe('release plans', () => {
  /** Three images: app (an existing tag moves), worker (its own attestations mode), db. */
  async function threeImages(seed: string): Promise<{
    yaml: string
    app: Sources
    db: Sources
    old: PushedImage
    missingDb: string
  }> {
    const app = await sources(`${seed}/app`, `${seed}-app`)
    const worker = await sources(`${seed}/worker`, `${seed}-worker`)
    const db = await sources(`${seed}/db`, `${seed}-db`)
    // app:1 exists before the run, holding an older image.
    const old = await pushImage(a, `${seed}/app`, { arch: 's390x', seed: `${seed}-old`, tag: '1' })
    const missingDb = `${a.host}/${seed}/db@sha256:${'0'.repeat(64)}`
    const yaml = [
      'defaults:',
      '  attestations: strip',
      'images:',
      `  - tags: [${a.host}/${seed}/app:1, ${a.host}/${seed}/app:latest]`,
      '    sources:',
      ...refs(`${seed}/app`, app).map((r) => `      - ${r}`),
      `  - tags: ${a.host}/${seed}/worker:1`,
      `    sources: ${refs(`${seed}/worker`, worker).join(',')}`,
      '    attestations: keep',
      `  - tags: [${a.host}/${seed}/db:1]`,
      `    sources: [${refs(`${seed}/db`, db).join(', ')}]`,
      '    require-platforms: linux/amd64, linux/arm64'
    ].join('\n')
    return { yaml, app, db, old, missingDb }
  }

  it('merges three images in one run, each with its own inputs, and prints every result', async () => {
    const { yaml, old } = await threeImages('plan3')
    const file = join(dir, 'plan3.yaml')
    await writeFile(file, yaml)
    const run = await runCli(['--plan', file, '--json'])
    expect(run.stderr).not.toMatch(/^error/m)
    expect(run.code).toBe(0)
    const { results } = JSON.parse(run.stdout) as { results: Array<Record<string, string>> }
    expect(results).toHaveLength(3)
    const tags = [
      ['plan3/app', ['1', 'latest']],
      ['plan3/worker', ['1']],
      ['plan3/db', ['1']]
    ] as const
    for (const [i, [repo, names]] of tags.entries()) {
      for (const t of names) expect(await held(repo, t)).toBe(results[i].digest)
      expect(results[i].tags).toBe(names.map((t) => `${a.host}/${repo}:${t}`).join('\n'))
      expect(results[i].manifest).toBe((await getManifest(a, repo, names[0]))?.body)
    }
    expect(results[0].digest).not.toBe(old.digest)
    // defaults: attestations strip; the worker keeps them.
    expect(await entryPlatforms('plan3/app', '1')).toEqual(['linux/amd64', 'linux/arm64'])
    expect(await entryPlatforms('plan3/worker', '1')).toContain('unknown/unknown')
    expect(run.stderr).toMatch(/^Resolve sources \(3 images\)\.\.\.$/m)
    expect(run.stderr).toMatch(
      /^image 3: sha256:[0-9a-f]{64} \(linux\/amd64, linux\/arm64\/v8\); pushed to /m
    )
  })

  it('moves no tag of any image when the third image has a missing source', async () => {
    const { yaml, old, missingDb, db } = await threeImages('planfail')
    const broken = yaml.replace(refs('planfail/db', db)[0], missingDb)
    expect(broken).toContain(missingDb)
    const file = join(dir, 'planfail.yaml')
    await writeFile(file, broken)
    const before = await snapshotStorage(a.storageDir)
    const run = await runCli(['--plan', file, '--json'])
    expect(run.code).toBe(1)
    expect(run.stdout).toBe('')
    expect(run.stderr).toMatch(
      new RegExp(
        `^error: merge failed: image 3 \\(${a.host}/planfail/db:1\\): .*${missingDb.split('@')[1]}`,
        'm'
      )
    )
    // Tags that existed keep their digest, new ones do not appear, nothing was written.
    expect(await held('planfail/app', '1')).toBe(old.digest)
    for (const [repo, t] of [
      ['planfail/app', 'latest'],
      ['planfail/worker', '1'],
      ['planfail/db', '1']
    ])
      expect(await held(repo, t)).toBeUndefined()
    expect(await snapshotStorage(a.storageDir)).toEqual(before)

    // The same plan through the action, as YAML text in INPUT_PLAN.
    const action = await runAction({ plan: broken })
    expect(action.code).toBe(1)
    expect(action.stdout).toMatch(
      new RegExp(`^::error::merge failed: image 3 \\(${a.host}/planfail/db:1\\): `, 'm')
    )
    expect(action.outputs).toEqual({})
    expect(await held('planfail/app', '1')).toBe(old.digest)
    expect(await snapshotStorage(a.storageDir)).toEqual(before)
  })

  it('runs through the action with INPUT_PLAN: results for every image, the usual outputs for the first', async () => {
    const { yaml } = await threeImages('planaction')
    const file = join(dir, 'planaction.yaml')
    await writeFile(file, yaml)
    const run = await runAction({ plan: file })
    expect(run.stdout).not.toMatch(/::error::/)
    expect(run.code).toBe(0)
    const results = JSON.parse(run.outputs.results) as Array<Record<string, string>>
    expect(results.map((r) => r.tags)).toEqual([
      `${a.host}/planaction/app:1\n${a.host}/planaction/app:latest`,
      `${a.host}/planaction/worker:1`,
      `${a.host}/planaction/db:1`
    ])
    expect(results[1].digest).toBe(await held('planaction/worker', '1'))
    expect(results[2].digest).toBe(await held('planaction/db', '1'))
    for (const name of OUTPUT_NAMES) expect(run.outputs[name]).toBe(results[0][name])
    expect(run.outputs.digest).toBe(await held('planaction/app', 'latest'))
    expect(run.summary).toContain('image 3')
    // Inputs around the plan: tags may not be given with it.
    const both = await runAction({ plan: file, tags: `${a.host}/planaction/app:2` })
    expect(both.code).toBe(1)
    expect(both.stdout).toContain(
      '::error::input plan: tags must be empty when a plan is given (each image of the plan has its own)'
    )
  })

  describe('through a proxy that counts and refuses', () => {
    let proxy: TestProxy
    beforeAll(async () => {
      proxy = await startProxy(a.url)
    })
    afterAll(async () => {
      await proxy?.stop()
    })

    it('fetches a source that two images share once, and copies it once into their repository', async () => {
      const shared = await pushImage(a, 'planshare/stage', { arch: 'arm64', seed: 'share' })
      const one = await pushImage(a, 'planshare/stage', { arch: 'amd64', seed: 'share-1' })
      const two = await pushImage(a, 'planshare/stage', { arch: 'amd64', seed: 'share-2' })
      const stage = `${proxy.host}/planshare/stage`
      const file = join(dir, 'planshare.yaml')
      await writeFile(
        file,
        [
          'images:',
          `  - tags: ${proxy.host}/planshare/rel:app`,
          `    sources: ${stage}@${one.digest}, ${stage}@${shared.digest}`,
          `  - tags: ${proxy.host}/planshare/rel:app-debug`,
          `    sources: ${stage}@${two.digest}, ${stage}@${shared.digest}`
        ].join('\n')
      )
      proxy.reset()
      const run = await runCli(['--plan', file, '--json'])
      expect(run.stderr).not.toMatch(/^error/m)
      expect(run.code).toBe(0)
      const { results } = JSON.parse(run.stdout) as { results: Array<Record<string, string>> }
      expect(results.map((r) => JSON.parse(r['platform-digests']) as unknown)).toEqual([
        { 'linux/amd64': one.digest, 'linux/arm64': shared.digest },
        { 'linux/amd64': two.digest, 'linux/arm64': shared.digest }
      ])
      const hex = (d: string): string => d.slice('sha256:'.length)
      expect(
        proxy.count(
          'GET',
          new RegExp(`^/v2/planshare/stage/manifests/sha256:${hex(shared.digest)}$`)
        )
      ).toBe(1)
      expect(
        proxy.count('PUT', new RegExp(`^/v2/planshare/rel/manifests/sha256:${hex(shared.digest)}$`))
      ).toBe(1)
      for (const blob of [shared.configDigest, ...shared.layerDigests])
        expect(
          proxy.count(
            'POST',
            new RegExp(`^/v2/planshare/rel/blobs/uploads/\\?.*mount=sha256(:|%3A)${hex(blob)}`)
          )
        ).toBe(1)
      expect(await held('planshare/rel', 'app')).toBe(results[0].digest)
      expect(await held('planshare/rel', 'app-debug')).toBe(results[1].digest)
    })

    it('puts back the tags of every image', async () => {
      const one = await pushImage(a, 'planroll/one', { arch: 'amd64', seed: 'roll-new' })
      const oldOne = await pushImage(a, 'planroll/one', {
        arch: 'amd64',
        seed: 'roll-old',
        tag: 'v1'
      })
      const two = await pushImage(a, 'planroll/two', { arch: 'amd64', seed: 'roll-new2' })
      const oldTwo = await pushImage(a, 'planroll/two', {
        arch: 'amd64',
        seed: 'roll-old2',
        tag: 'v1'
      })
      // The second image's tag is refused: a plain 400, not a conflict. Image one's tag PUT is
      // held until that refusal has been answered, so it moves after the failure.
      let refused!: () => void
      const refusedOnce = new Promise<void>((r) => (refused = r))
      const refuseTwo = refuse(
        'PUT',
        /^\/v2\/planroll\/two\/manifests\/v1$/,
        400,
        'MANIFEST_INVALID'
      )
      proxy.rules.push((req, res) => {
        if (!refuseTwo(req, res)) return false
        refused()
        return true
      })
      let oneMoved = false
      proxy.rules.push(async (req) => {
        if (req.method !== 'PUT' || !/^\/v2\/planroll\/one\/manifests\/v1$/.test(req.url ?? ''))
          return false
        await refusedOnce
        oneMoved = true
        return false
      })
      const plan = JSON.stringify({
        images: [
          {
            tags: [`${proxy.host}/planroll/one:v1`],
            sources: [`${proxy.host}/planroll/one@${one.digest}`]
          },
          {
            tags: [`${proxy.host}/planroll/two:v1`],
            sources: [`${proxy.host}/planroll/two@${two.digest}`]
          }
        ]
      })
      const file = join(dir, 'planroll.json')
      await writeFile(file, plan)
      const run = await runCli(['--plan', file])
      expect(run.code).toBe(1)
      expect(run.stderr).toMatch(
        new RegExp(
          `^error: merge failed: image 2 \\(${proxy.host}/planroll/two:v1\\): .*refused by test`,
          'm'
        )
      )
      expect(await held('planroll/two', 'v1')).toBe(oldTwo.digest)
      expect(await held('planroll/one', 'v1')).toBe(oldOne.digest)
      // Both pushes start together, so image one's tag moved and was put back.
      expect(oneMoved).toBe(true)
      expect(run.stderr).toContain(`put back on ${oldOne.digest}`)
    })
  })
})
