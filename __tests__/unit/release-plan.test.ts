import { afterAll, describe, expect, it } from '@jest/globals'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { formatReference } from '../../src/core/reference.js'
import { InputError, type GithubContext, type InputReader } from '../../src/inputs.js'
import { parsePlan, planInput, readSetup, type RunSetup } from '../../src/release-plan.js'

const made: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'release-plan-'))
  made.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true })
})

const REG = 'registry.example:5000'
const hex = (c: string): string => c.repeat(64)
const DA = `sha256:${hex('a')}`
const DB = `sha256:${hex('b')}`
const DC = `sha256:${hex('c')}`
const DD = `sha256:${hex('d')}`
const APP_A = `${REG}/acme/app@${DA}`
const APP_B = `${REG}/acme/app@${DB}`

const NAME = 'plan release.yml'

function reader(values: Record<string, string> = {}): InputReader {
  return (name) => values[name] ?? ''
}

/** What metadata-action leaves in the environment of a job: a plan must not use it. */
const METADATA_ENV = {
  DOCKER_METADATA_OUTPUT_JSON: JSON.stringify({ tags: [`${REG}/acme/from-env:9`] }),
  DOCKER_METADATA_OUTPUT_ANNOTATIONS: 'org.example.from-env=yes'
}

interface Parsed {
  setup: RunSetup
  secrets: string[]
}

async function parse(
  text: string,
  around: Record<string, string> = {},
  env: NodeJS.ProcessEnv = {},
  github?: GithubContext
): Promise<Parsed> {
  const secrets: string[] = []
  const setup = await parsePlan(text, NAME, reader(around), (s) => secrets.push(s), env, github)
  return { setup, secrets }
}

/** The InputError message parsePlan rejects `text` with. */
async function planError(text: string, around: Record<string, string> = {}): Promise<string> {
  let error: unknown
  try {
    await parsePlan(text, NAME, reader(around), () => {}, {})
  } catch (e) {
    error = e
  }
  if (!(error instanceof InputError))
    throw new Error(`expected an InputError, got ${String(error)}`)
  return error.message
}

/** A plan of one image and the given extra lines of that image. */
function oneImage(...lines: string[]): string {
  return [
    'images:',
    `  - tags: ${REG}/acme/app:1.0`,
    `    sources: ${APP_A}`,
    ...lines.map((l) => `    ${l}`)
  ].join('\n')
}

const YAML_PLAN = `
# Two images released together.
defaults:
  attestations: strip
  platforms: [linux/amd64, linux/arm64]
  dry-run: true
  retries: 3
  username: ci
  password: s3cret
  registry-auth:
    - other.example=bot:t0ken
  annotations:
    org.opencontainers.image.vendor: Acme
images:
  - tags:
      - ${REG}/acme/app:1.0
      - ${REG}/acme/app:latest
    sources:
      - ${APP_A}
      - ${APP_B}
  - tags: mirror.example/acme/tool:1.0
    sources: [${DC}, ${DD}]
    attestations: keep
    platforms: linux/arm64/v8
    annotations:
      org.opencontainers.image.title: tool
      org.opencontainers.image.version: "1.0"
      "manifest-descriptor[linux/arm64/v8]:org.example.arch": arm
`

describe('parsePlan', () => {
  it('reads a YAML plan of two images with defaults', async () => {
    const around = { format: 'oci', 'max-concurrency': '8', retries: '9', attestations: 'strip' }
    const { setup, secrets } = await parse(YAML_PLAN, around, METADATA_ENV)
    expect(setup.fromPlan).toBe(true)
    const [app, tool] = setup.images
    expect(setup.images).toHaveLength(2)

    expect(app.tags.map(formatReference)).toEqual([`${REG}/acme/app:1.0`, `${REG}/acme/app:latest`])
    expect(app.sources).toEqual([
      { input: APP_A, ref: { registry: REG, repository: 'acme/app', digest: DA } },
      { input: APP_B, ref: { registry: REG, repository: 'acme/app', digest: DB } }
    ])
    expect(app.attestations).toBe('strip')
    expect(app.format).toBe('oci')
    expect(app.platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' }
    ])
    expect(app.annotations).toEqual({ 'org.opencontainers.image.vendor': 'Acme' })
    expect(app.descriptorAnnotations).toEqual({})
    expect(app.platformDescriptorAnnotations).toEqual([])

    expect(tool.tags.map(formatReference)).toEqual(['mirror.example/acme/tool:1.0'])
    // Bare digests are looked up in the image's own first tag.
    expect(tool.sources).toEqual([
      {
        input: DC,
        ref: { registry: 'mirror.example', repository: 'acme/tool', digest: DC },
        lookedUpIn: 'first tag'
      },
      {
        input: DD,
        ref: { registry: 'mirror.example', repository: 'acme/tool', digest: DD },
        lookedUpIn: 'first tag'
      }
    ])
    expect(tool.attestations).toBe('keep')
    expect(tool.format).toBe('oci')
    expect(tool.platforms).toEqual([{ os: 'linux', architecture: 'arm64', variant: 'v8' }])
    // The image's annotations replace those of the defaults.
    expect(tool.annotations).toEqual({
      'org.opencontainers.image.title': 'tool',
      'org.opencontainers.image.version': '1.0'
    })
    expect(tool.platformDescriptorAnnotations).toEqual([
      {
        platforms: [{ os: 'linux', architecture: 'arm64', variant: 'v8' }],
        key: 'org.example.arch',
        value: 'arm'
      }
    ])

    const { run } = setup
    expect(run.dryRun).toBe(true)
    // The defaults win over the inputs around the plan; what they do not set comes from around.
    expect(run.retries).toBe(3)
    expect(run.maxConcurrency).toBe(8)
    expect(run.timeoutSeconds).toBe(900)
    expect(run.githubToken).toBe('')
    // username/password for the registries of every image's tags, registry-auth for its own.
    expect(Object.fromEntries(run.credentials)).toEqual({
      'other.example': { username: 'bot', password: 't0ken' },
      [REG]: { username: 'ci', password: 's3cret' },
      'mirror.example': { username: 'ci', password: 's3cret' }
    })
    expect(secrets).toEqual(['t0ken', 's3cret'])
  })

  it('reads a JSON plan, numbers and booleans as their text', async () => {
    const plan = JSON.stringify({
      defaults: {
        'dry-run': false,
        timeout: 120,
        'insecure-registries': ['Registry.Example:5000']
      },
      images: [
        {
          tags: [`${REG}/acme/app:2.0`],
          sources: [APP_A, APP_B],
          'on-duplicate': 'last',
          append: true,
          'require-platforms': 'linux/amd64,linux/arm64',
          'allow-extra-platforms': true,
          annotations: { 'index:org.opencontainers.image.version': '2.0', 'org.example.n': 7 }
        }
      ]
    })
    const { setup, secrets } = await parse(plan, { 'dry-run': 'true', 'github-token': 'ghs_x' })
    expect(setup.images).toHaveLength(1)
    const [image] = setup.images
    expect(image.tags.map(formatReference)).toEqual([`${REG}/acme/app:2.0`])
    expect(image.sources.map((s) => formatReference(s.ref))).toEqual([APP_A, APP_B])
    expect(image.onDuplicate).toBe('last')
    expect(image.append).toBe(true)
    expect(image.allowExtraPlatforms).toBe(true)
    expect(image.requirePlatforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' }
    ])
    expect(image.platforms).toBeUndefined()
    expect(image.attestations).toBe('keep')
    expect(image.annotations).toEqual({
      'org.opencontainers.image.version': '2.0',
      'org.example.n': '7'
    })
    // dry-run: true around the plan stays a dry run, whatever the defaults say.
    expect(setup.run.dryRun).toBe(true)
    expect(setup.run.timeoutSeconds).toBe(120)
    expect(setup.run.insecureRegistries).toEqual(['registry.example:5000'])
    expect(setup.run.githubToken).toBe('ghs_x')
    expect(setup.run.credentials.size).toBe(0)
    expect(secrets).toEqual(['ghs_x'])
  })

  it('applies the inputs around the plan to every image the plan does not set them for', async () => {
    const plan = [
      'images:',
      `  - tags: ${REG}/acme/app:1.0`,
      `    sources: ${APP_A}`,
      `  - tags: ${REG}/acme/other:1.0`,
      `    sources: ${REG}/acme/other@${DC}`,
      '    on-conflict: skip',
      '    preserve-digest: true'
    ].join('\n')
    const { setup } = await parse(plan, {
      'on-conflict': 'warn',
      'copy-referrers': 'true',
      username: 'ci',
      password: 'p'
    })
    expect(setup.images.map((i) => [i.onConflict, i.copyReferrers, i.preserveDigest])).toEqual([
      ['warn', true, false],
      ['skip', true, true]
    ])
    expect(Object.fromEntries(setup.run.credentials)).toEqual({
      [REG]: { username: 'ci', password: 'p' }
    })
  })

  it('does not read metadata-action variables for plan images, but takes metadata-json', async () => {
    const meta = JSON.stringify({ tags: [`${REG}/acme/app:3.0`, `${REG}/acme/app:3`] })
    const plan = JSON.stringify({
      images: [{ 'metadata-json': meta, sources: [APP_A] }]
    })
    const { setup } = await parse(plan, {}, METADATA_ENV)
    expect(setup.images[0].tags.map(formatReference)).toEqual([
      `${REG}/acme/app:3.0`,
      `${REG}/acme/app:3`
    ])
    expect(setup.images[0].annotations).toEqual({})
    // Without tags or metadata-json of its own, DOCKER_METADATA_OUTPUT_JSON does not give them.
    await expect(
      parsePlan(`images:\n  - sources: ${APP_A}\n`, NAME, reader(), () => {}, METADATA_ENV)
    ).rejects.toThrow(new InputError(`${NAME}: image 1: no tags (each image needs its own tags)`))
  })

  it('adds github annotations from the workflow context when the defaults ask', async () => {
    const github = { serverUrl: 'https://github.com', repository: 'acme/app', sha: 'f00d' }
    const { setup } = await parse(
      `defaults:\n  github-annotations: true\n${oneImage()}`,
      {},
      {},
      github
    )
    expect(setup.images[0].annotations).toEqual({
      'org.opencontainers.image.source': 'https://github.com/acme/app',
      'org.opencontainers.image.revision': 'f00d'
    })
  })

  it('reads a tag without a tag name as :latest, and a null value as empty', async () => {
    const { setup } = await parse(
      ['images:', `  - tags: ${REG}/acme/app`, `    sources: ${APP_A}`, '    platforms:'].join(
        '\n'
      ),
      { platforms: 'linux/amd64' }
    )
    expect(setup.images[0].tags.map(formatReference)).toEqual([`${REG}/acme/app:latest`])
    // An empty value in the plan is the plan's: it is not replaced by the input around it.
    expect(setup.images[0].platforms).toBeUndefined()
  })

  describe('refuses', () => {
    it.each([
      [
        'an unknown top-level key',
        `version: 2\nnote: x\n${oneImage()}`,
        `${NAME}: unknown key "version", "note" (a plan has defaults and images)`
      ],
      [
        'a document that is not a mapping',
        '- a\n- b\n',
        `${NAME}: expected a mapping with an images list`
      ],
      ['an empty document', '', `${NAME}: expected a mapping with an images list`],
      [
        'a plan without images',
        'defaults:\n  retries: 1\n',
        `${NAME}: images must be a list of one or more images`
      ],
      [
        'an empty images list',
        'images: []\n',
        `${NAME}: images must be a list of one or more images`
      ],
      [
        'images that are not a list',
        `images:\n  tags: ${REG}/acme/app:1.0\n`,
        `${NAME}: images must be a list of one or more images`
      ],
      [
        'an image that is not a mapping',
        `images:\n  - ${REG}/acme/app:1.0\n`,
        `${NAME}: image 1: expected a mapping of inputs`
      ],
      [
        'defaults that are not a mapping',
        `defaults: [a]\n${oneImage()}`,
        `${NAME}: defaults: expected a mapping of inputs`
      ],
      [
        'an unknown input in an image',
        `${oneImage()}\n  - tags: ${REG}/acme/b:1\n    sources: ${APP_B}\n    colour: blue`,
        `${NAME}: image 2: "colour" is not an input of multiarch-merge`
      ],
      [
        'plan inside an image',
        oneImage('plan: other.yml'),
        `${NAME}: image 1: "plan" is not an input of multiarch-merge`
      ],
      [
        'an unknown input in the defaults',
        `defaults:\n  retry: 3\n${oneImage()}`,
        `${NAME}: defaults: "retry" is not an input of multiarch-merge`
      ],
      [
        'a run-level input in an image',
        oneImage('dry-run: true'),
        `${NAME}: image 1: dry-run applies to the whole run: set it under defaults`
      ],
      [
        'run-level inputs in an image',
        oneImage('retries: 2', 'username: ci', 'password: p'),
        `${NAME}: image 1: retries, username, password apply to the whole run: set them under defaults`
      ],
      [
        'tags and sources in the defaults',
        `defaults:\n  tags: ${REG}/acme/app:1.0\n  sources: ${APP_A}\n${oneImage()}`,
        `${NAME}: defaults: tags, sources belong to each image, not to defaults`
      ],
      [
        'digests-dir and metadata-json in the defaults',
        `defaults:\n  digests-dir: digests\n  metadata-json: '{}'\n${oneImage()}`,
        `${NAME}: defaults: digests-dir, metadata-json belong to each image, not to defaults`
      ],
      [
        'an image without tags',
        `${oneImage()}\n  - sources: ${APP_B}`,
        `${NAME}: image 2: no tags (each image needs its own tags)`
      ],
      [
        'a list holding a mapping',
        oneImage('platforms:', '  - os: linux'),
        `${NAME}: image 1: platforms: a list may hold only strings`
      ],
      [
        'a mapping for an input other than annotations',
        oneImage('platforms:', '  linux: amd64'),
        `${NAME}: image 1: platforms: expected a string or a list`
      ],
      [
        'an annotation whose value is a mapping',
        oneImage('annotations:', '  org.example.a:', '    nested: x'),
        `${NAME}: image 1: annotations: org.example.a: expected a string or a list`
      ],
      [
        'a wrong input value, naming the image',
        `${oneImage()}\n  - tags: ${REG}/acme/b:1\n    sources: ${APP_B}\n    platforms: amd64`,
        `${NAME}: image 2: input platforms: "amd64" is not a platform (expected os/arch or os/arch/variant, e.g. linux/arm64)`
      ],
      [
        'a wrong value from the defaults, naming the image it breaks',
        `defaults:\n  format: zip\n${oneImage()}`,
        `${NAME}: image 1: input format: "zip" is not one of auto, oci, docker`
      ],
      [
        'tags and metadata-json in one image',
        oneImage(`metadata-json: '{"tags": ["${REG}/acme/app:2"]}'`),
        `${NAME}: image 1: inputs tags and metadata-json: set one of them (both give the tags)`
      ],
      [
        'a tag with a digest',
        ['images:', `  - tags: ${APP_A}`, `    sources: ${APP_B}`].join('\n'),
        `${NAME}: image 1: input tags: "${APP_A}" has a digest; tags must be tag references (the index digest is computed and given as the digest output)`
      ],
      [
        'a tag in two images',
        [
          'images:',
          `  - tags: [${REG}/acme/app:1.0, ${REG}/acme/app]`,
          `    sources: ${APP_A}`,
          `  - tags: mirror.example/acme/app:1.0`,
          `    sources: ${APP_B}`,
          `  - tags: ${REG}/acme/app:latest`,
          `    sources: ${APP_B}`
        ].join('\n'),
        `${NAME}: tag ${REG}/acme/app:latest is in images 1 and 3: a tag can hold only one of them`
      ]
    ])('%s', async (_what, text, message) => {
      expect(await planError(text)).toBe(message)
    })

    it('a tag in two images, however it is written', async () => {
      const plan = JSON.stringify({
        images: [
          { tags: 'index.docker.io/library/alpine:3', sources: [APP_A] },
          { tags: 'alpine:3', sources: [APP_B] }
        ]
      })
      expect(await planError(plan)).toBe(
        `${NAME}: tag docker.io/library/alpine:3 is in images 1 and 2: a tag can hold only one of them`
      )
    })

    it('a plan that does not parse, saying where (line and column)', async () => {
      const yaml = await planError(`defaults:\n  retries: 3\n  retries: 4\n${oneImage()}`)
      const json = await planError('{"images": [}')
      expect([yaml, json]).toEqual([
        expect.stringMatching(
          /^plan release\.yml: not valid YAML or JSON \(line 3, column 3\): Map keys must be unique/
        ),
        expect.stringMatching(
          /^plan release\.yml: not valid YAML or JSON \(line 1, column 13\): Flow sequence in block collection must be sufficiently indented and end with a \]/
        )
      ])
    })

    it('a wrong run-level value of the defaults, naming the plan', async () => {
      const retries = await planError(`defaults:\n  retries: 99\n${oneImage()}`)
      const password = await planError(`defaults:\n  password: p\n${oneImage()}`)
      expect([retries, password]).toEqual([
        expect.stringMatching(
          /^plan release\.yml: .*input retries: "99" is not a whole number from 0 to 20$/
        ),
        expect.stringMatching(
          /^plan release\.yml: .*inputs username and password: set both or neither$/
        )
      ])
    })
  })
})

describe('readSetup', () => {
  it('is one merge without a plan', async () => {
    const secrets: string[] = []
    const setup = await readSetup(
      reader({ tags: `${REG}/acme/app:1.0`, sources: `${APP_A}\n${APP_B}`, 'dry-run': 'true' }),
      (s) => secrets.push(s),
      METADATA_ENV
    )
    expect(setup.fromPlan).toBe(false)
    expect(setup.images).toHaveLength(1)
    expect(setup.images[0].tags.map(formatReference)).toEqual([`${REG}/acme/app:1.0`])
    expect(setup.images[0].sources.map((s) => s.input)).toEqual([APP_A, APP_B])
    // Outside a plan, metadata-action's annotations apply.
    expect(setup.images[0].annotations).toEqual({ 'org.example.from-env': 'yes' })
    expect(setup.run.dryRun).toBe(true)
    expect(setup.run.retries).toBe(10)
    expect(secrets).toEqual([])
  })

  it('reads the plan input when it holds the plan text', async () => {
    const setup = await readSetup(reader({ plan: YAML_PLAN, 'max-concurrency': '4' }), () => {}, {})
    expect(setup.fromPlan).toBe(true)
    expect(setup.images.map((i) => i.tags.map(formatReference))).toEqual([
      [`${REG}/acme/app:1.0`, `${REG}/acme/app:latest`],
      ['mirror.example/acme/tool:1.0']
    ])
    expect(setup.run.maxConcurrency).toBe(4)
    expect(setup.run.retries).toBe(3)
  })

  it('reads the plan input when it names a file, and names the file in errors', async () => {
    const dir = tempDir()
    const path = join(dir, 'release.yml')
    writeFileSync(path, YAML_PLAN)
    const setup = await readSetup(reader({ plan: ` ${path}\n` }), () => {}, {})
    expect(setup.images).toHaveLength(2)
    writeFileSync(path, 'images: []\n')
    await expect(readSetup(reader({ plan: path }), () => {}, {})).rejects.toThrow(
      new InputError(`plan ${path}: images must be a list of one or more images`)
    )
  })

  it('takes the plan given to it over the plan input', async () => {
    const setup = await readSetup(reader({ plan: 'not read' }), () => {}, {}, undefined, {
      name: 'plan (stdin)',
      text: YAML_PLAN
    })
    expect(setup.images).toHaveLength(2)
    await expect(
      readSetup(reader(), () => {}, {}, undefined, { name: 'plan (stdin)', text: '[]' })
    ).rejects.toThrow(new InputError('plan (stdin): expected a mapping with an images list'))
  })

  it.each([
    [{ tags: `${REG}/acme/app:1.0` }, 'tags'],
    [{ sources: APP_A, 'digests-dir': 'digests' }, 'sources, digests-dir'],
    [
      { tags: 'a', sources: 'b', 'digests-dir': 'c', 'metadata-json': '{}' },
      'tags, sources, digests-dir, metadata-json'
    ]
  ])('refuses a plan with %j around it', async (around, names) => {
    await expect(readSetup(reader({ ...around, plan: YAML_PLAN }), () => {}, {})).rejects.toThrow(
      new InputError(
        `input plan: ${names} must be empty when a plan is given (each image of the plan has its own)`
      )
    )
  })

  it('ignores blank tags and sources around a plan', async () => {
    const setup = await readSetup(
      reader({ tags: '  ', sources: '\n', plan: YAML_PLAN }),
      () => {},
      {}
    )
    expect(setup.fromPlan).toBe(true)
  })
})

describe('planInput', () => {
  it('is nothing when empty', () => {
    expect(planInput('')).toBeUndefined()
    expect(planInput(' \n ')).toBeUndefined()
  })

  it('returns YAML or JSON text as it is, trimmed', () => {
    expect(planInput(`\nimages:\n  - tags: ${REG}/acme/app:1.0\n`)).toEqual({
      name: 'input plan',
      text: `images:\n  - tags: ${REG}/acme/app:1.0`
    })
    expect(planInput(' {"images": []} ')).toEqual({ name: 'input plan', text: '{"images": []}' })
  })

  it('reads a file named by a path', () => {
    const dir = tempDir()
    const path = join(dir, 'plan.json')
    writeFileSync(path, '{"images": []}\n')
    expect(planInput(path)).toEqual({ name: `plan ${path}`, text: '{"images": []}\n' })
  })

  it('names a path that does not exist', () => {
    const path = join(tempDir(), 'missing', 'release.yml')
    expect(() => planInput(path)).toThrow(
      new InputError(`input plan: cannot read the plan "${path}": no such file`)
    )
    expect(() => planInput(path)).toThrow(InputError)
  })
})

describe('what a plan cannot override or hide', () => {
  const tags = `${REG}/acme/app:3.0`
  it('reads dry-run: false in the defaults as a write only when nothing around asks for a dry run', async () => {
    const plan = `defaults:\n  dry-run: false\nimages:\n  - tags: ${tags}\n    sources: ${APP_A}\n`
    expect((await parse(plan, {})).setup.run.dryRun).toBe(false)
    expect((await parse(plan, { 'dry-run': 'true' })).setup.run.dryRun).toBe(true)
    const asked = `defaults:\n  dry-run: true\nimages:\n  - tags: ${tags}\n    sources: ${APP_A}\n`
    expect((await parse(asked, { 'dry-run': 'false' })).setup.run.dryRun).toBe(true)
  })

  it('refuses an alias that names nothing as an input error, naming the plan', async () => {
    const plan = `images:\n  - tags: *nope\n    sources: ${APP_A}\n`
    await expect(parse(plan, {})).rejects.toThrow(/^plan release\.yml: not (valid|a usable) YAML/)
    await expect(parse(plan, {})).rejects.toBeInstanceOf(InputError)
  })
})
