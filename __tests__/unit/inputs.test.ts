import { afterAll, describe, expect, it } from '@jest/globals'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { INPUT_NAMES, misnamedInputs, parseInputs, parseList } from '../../src/inputs.js'

/** Folders made by the tests, removed at the end. */
const made: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'digests-'))
  made.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

const D1 = 'sha256:' + '1'.repeat(64)
const D2 = 'sha256:' + '2'.repeat(64)

function reader(values: Record<string, string>): (name: string) => string {
  return (name) => values[name] ?? ''
}

describe('parseInputs', () => {
  it('splits lists on newlines and commas', () => {
    expect(parseList('a, b\n\nc\n# comment\n')).toEqual(['a', 'b', 'c'])
  })

  it('resolves bare digests against the first tag, or source-repository', () => {
    const i = parseInputs(
      reader({
        tags: 'ghcr.io/acme/app:1\nghcr.io/acme/app:latest',
        sources: `${D1}\nghcr.io/acme/x@${D2}`
      })
    )
    expect(i.sources.map((s) => s.ref)).toEqual([
      { registry: 'ghcr.io', repository: 'acme/app', digest: D1 },
      { registry: 'ghcr.io', repository: 'acme/x', digest: D2 }
    ])
    const j = parseInputs(
      reader({
        tags: 'ghcr.io/acme/app:1',
        sources: D1,
        'source-repository': 'ghcr.io/acme/staging'
      })
    )
    expect(j.sources[0].ref.repository).toBe('acme/staging')
  })

  it('reads digests-dir files named by hex', () => {
    const dir = tempDir()
    writeFileSync(join(dir, '1'.repeat(64)), '')
    writeFileSync(join(dir, '2'.repeat(64)), '')
    const i = parseInputs(reader({ tags: 'r.io/a:1', 'digests-dir': dir }))
    expect(i.sources.map((s) => s.ref.digest)).toEqual([D1, D2])
    writeFileSync(join(dir, 'notes.txt'), '')
    expect(() => parseInputs(reader({ tags: 'r.io/a:1', 'digests-dir': dir }))).toThrow(
      /digests-dir: file .*notes.txt/
    )
  })

  it.each([
    [{ tags: '', sources: D1 }, /input tags: no tag given/],
    [{ tags: `r.io/a@${D1}`, sources: D1 }, /input tags: .*has a digest/],
    [{ tags: 'r.io/A:1', sources: D1 }, /input tags: .*"r.io\/A:1".*lowercase/],
    [{ tags: 'r.io/a:1', sources: '' }, /input sources: no sources given/],
    [
      { tags: 'r.io/a:1', sources: 'sha256:abc' },
      /input sources: "sha256:abc" is not a valid digest: .*64 hex/
    ],
    [{ tags: 'r.io/a:1', sources: 'sha256:' + 'A'.repeat(64) }, /input sources: .*lowercase/],
    [{ tags: 'r.io/a:1', sources: 'sha512:' + 'a'.repeat(64) }, /input sources: .*128 hex/],
    [
      { tags: 'r.io/a:1', sources: `r.io/a@md5:${'a'.repeat(32)}` },
      /input sources: .*unsupported digest algorithm "md5"/
    ],
    [
      { tags: 'r.io/a:1', sources: D1, format: 'zip' },
      /input format: "zip" is not one of auto, oci, docker/
    ],
    [{ tags: 'r.io/a:1', sources: D1, attestations: 'maybe' }, /input attestations: "maybe"/],
    [{ tags: 'r.io/a:1', sources: D1, 'dry-run': 'yes' }, /input dry-run: "yes" is not a boolean/],
    [{ tags: 'r.io/a:1', sources: D1, 'max-concurrency': '0' }, /input max-concurrency: "0"/],
    [
      { tags: 'r.io/a:1', sources: D1, platforms: 'amd64' },
      /input platforms: "amd64" is not a platform/
    ],
    [
      { tags: 'r.io/a:1', sources: D1, annotations: 'novalue' },
      /input annotations: "novalue" is not key=value/
    ],
    [
      { tags: 'r.io/a:1', sources: D1, 'source-repository': 'r.io/a:tag' },
      /input source-repository: .*without tag/
    ],
    [
      { tags: 'r.io/a:1', sources: D1, 'digests-dir': '/nonexistent/dir' },
      /input digests-dir: cannot read "\/nonexistent\/dir"/
    ],
    [{ tags: 'r.io/a:1', sources: D1, username: 'u' }, /username and password: set both/]
  ])('rejects %j', (values, message) => {
    expect(() => parseInputs(reader(values))).toThrow(message)
  })

  it('applies defaults and masks the password', () => {
    const secrets: string[] = []
    const i = parseInputs(
      reader({ tags: 'r.io/a', sources: D1, username: 'u', password: 'p4ss' }),
      (s) => secrets.push(s)
    )
    expect(i.tags[0].tag).toBe('latest')
    expect(i).toMatchObject({
      format: 'auto',
      attestations: 'keep',
      onDuplicate: 'error',
      dryRun: false,
      maxConcurrency: 32
    })
    expect(secrets).toEqual(['p4ss'])
    expect(i.credentials.get('r.io')).toEqual({ username: 'u', password: 'p4ss' })
  })

  it('reads tags from metadata-action json (input or environment) and sorts annotation levels', () => {
    const json = JSON.stringify({ tags: ['r.io/a:main', 'r.io/a:sha-1'], labels: {} })
    expect(
      parseInputs(reader({ 'metadata-json': json, sources: D1 })).tags.map((t) => t.tag)
    ).toEqual(['main', 'sha-1'])
    const fromEnv = parseInputs(reader({ sources: D1 }), () => {}, {
      DOCKER_METADATA_OUTPUT_JSON: json
    })
    expect(fromEnv.tags).toHaveLength(2)
    expect(() => parseInputs(reader({ 'metadata-json': '{nope', sources: D1 }))).toThrow(
      /input metadata-json: not valid JSON/
    )
    const i = parseInputs(
      reader({
        tags: 'r.io/a:1',
        sources: D1,
        annotations:
          'a=1\nindex:b=2\nmanifest-descriptor:c=3\nmanifest:d=4\nindex-descriptor:e=5\nurl=https://x.io/a:b'
      })
    )
    expect(i.annotations).toEqual({ a: '1', b: '2', url: 'https://x.io/a:b' })
    expect(i.descriptorAnnotations).toEqual({ c: '3' })
    expect(i.ignoredAnnotations).toEqual(['manifest:d=4', 'index-descriptor:e=5'])
  })

  it('adds github annotations from the context, and refuses them without one', () => {
    const gh = { serverUrl: 'https://github.com', repository: 'acme/app', sha: 'abc' }
    const i = parseInputs(
      reader({ tags: 'r.io/a:1', sources: D1, 'github-annotations': 'true' }),
      () => {},
      {},
      gh
    )
    expect(i.annotations).toEqual({
      'org.opencontainers.image.source': 'https://github.com/acme/app',
      'org.opencontainers.image.revision': 'abc'
    })
    expect(() =>
      parseInputs(
        reader({ tags: 'r.io/a:1', sources: D1, 'github-annotations': 'true' }),
        () => {},
        {}
      )
    ).toThrow(/input github-annotations/)
  })

  it('never echoes a registry-auth line, and masks its secret', () => {
    const secrets: string[] = []
    const i = parseInputs(
      reader({ tags: 'r.io/a:1', sources: D1, 'registry-auth': 'docker.io=me:tok3n\nghcr.io=u:p' }),
      (s) => secrets.push(s)
    )
    expect(i.credentials.get('docker.io')).toEqual({ username: 'me', password: 'tok3n' })
    expect(secrets).toEqual(['tok3n', 'p'])
    expect(() =>
      parseInputs(reader({ tags: 'r.io/a:1', sources: D1, 'registry-auth': 'garbage-s3cret' }))
    ).toThrow(/registry-auth/)
    try {
      parseInputs(reader({ tags: 'r.io/a:1', sources: D1, 'registry-auth': 'garbage-s3cret' }))
    } catch (e) {
      expect((e as Error).message).not.toContain('s3cret')
    }
  })

  it('validates insecure-registries, refuses tags with metadata-json, and reads annotations from the environment', () => {
    expect(() =>
      parseInputs(reader({ tags: 'r.io/a:1', sources: D1, 'insecure-registries': 'https://r.io' }))
    ).toThrow(/input insecure-registries: "https:\/\/r.io" is not a registry host/)
    expect(
      parseInputs(
        reader({ tags: 'r.io/a:1', sources: D1, 'insecure-registries': 'r.io:5000, 10.0.0.1' })
      ).insecureRegistries
    ).toEqual(['r.io:5000', '10.0.0.1'])
    expect(() =>
      parseInputs(reader({ tags: 'r.io/a:1', sources: D1, 'metadata-json': '{"tags":[]}' }))
    ).toThrow(/inputs tags and metadata-json: set one/)
    const i = parseInputs(reader({ tags: 'r.io/a:1', sources: D1 }), () => {}, {
      DOCKER_METADATA_OUTPUT_ANNOTATIONS: 'index:a=1\nmanifest:b=2'
    })
    expect(i.annotations).toEqual({ a: '1' })
    expect(i.ignoredAnnotations).toEqual(['manifest:b=2'])
  })

  it('says what went wrong with the artifact pattern, without touching the network', () => {
    const hex = '1'.repeat(64)
    expect(() => parseInputs(reader({ tags: 'r.io/a:1', sources: hex }))).toThrow(
      `input sources: "${hex}" is a digest without its algorithm: did you mean sha256:${hex}?`
    )
    const empty = tempDir()
    expect(() => parseInputs(reader({ tags: 'r.io/a:1', 'digests-dir': empty }))).toThrow(
      `input digests-dir: the folder "${empty}" is empty: the digest artifacts have not arrived`
    )
    // Beside other sources, an empty folder is no mistake.
    expect(
      parseInputs(reader({ tags: 'r.io/a:1', sources: D1, 'digests-dir': empty })).sources
    ).toHaveLength(1)
    const nested = tempDir()
    mkdirSync(join(nested, 'digests-linux-amd64'))
    expect(() => parseInputs(reader({ tags: 'r.io/a:1', 'digests-dir': nested }))).toThrow(
      /holds folders \(digests-linux-amd64\), not digest files: .*merge-multiple: true/
    )
    expect(() => parseInputs(reader({ tags: 'r.io/a:1', sources: `- r.io/a@${D1}` }))).toThrow(
      /input sources: write one reference per line .* not a YAML list/
    )
    expect(() => parseInputs(reader({ tags: 'r.io/a:1', sources: `["r.io/a@${D1}"]` }))).toThrow(
      /input sources: write one reference per line .* not a JSON array/
    )
  })

  it('looks bare digests up in the first tag, or in source-repository, and says which', () => {
    const first = parseInputs(reader({ tags: 'r.io/a:1', sources: D1 }))
    expect(first.sources[0].lookedUpIn).toBe('first tag')
    const set = parseInputs(
      reader({ tags: 'r.io/a:1', sources: D1, 'source-repository': 'r.io/b' })
    )
    expect(set.sources[0].lookedUpIn).toBe('source-repository')
    expect(
      parseInputs(reader({ tags: 'r.io/a:1', sources: `r.io/c@${D1}` })).sources[0].lookedUpIn
    ).toBeUndefined()
  })

  it('lists every input of action.yml, and warns of INPUT_ names written with underscores', () => {
    const yml = readFileSync('action.yml', 'utf8')
    const inputs = yml.slice(yml.indexOf('\ninputs:'), yml.indexOf('\noutputs:'))
    const names = [...inputs.matchAll(/^ {2}([a-z-]+):$/gm)].map((m) => m[1])
    expect([...INPUT_NAMES].sort()).toEqual(names.sort())
    expect(
      misnamedInputs({
        INPUT_DRY_RUN: 'true',
        'INPUT_DRY-RUN': 'x',
        INPUT_TAGS: 'a',
        INPUT_OTHER_THING: '1'
      })
    ).toEqual([
      'INPUT_DRY_RUN is ignored: the runner passes input dry-run as INPUT_DRY-RUN, with the hyphen'
    ])
  })
})
