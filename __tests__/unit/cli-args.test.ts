import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { parseArgs, UsageError, type Command } from '../../src/cli/args.js'
import { USAGE } from '../../src/cli/help.js'
import { INPUT_NAMES } from '../../src/inputs.js'
import { OUTPUT_NAMES } from '../../src/outputs.js'
import { VERSION } from '../../src/version.js'

const TAG = 'registry.example:5000/acme/app:1.0'
const LATEST = 'registry.example:5000/acme/app:latest'
const S1 = `registry.example:5000/acme/app@sha256:${'a'.repeat(64)}`
const S2 = `registry.example:5000/acme/app@sha256:${'b'.repeat(64)}`

/** parseArgs, which must give a run (not help or version). */
function run(argv: string[]): Command {
  const parsed = parseArgs(argv)
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`)
  return parsed
}

/** The UsageError parseArgs throws for `argv`. */
function usageError(argv: string[]): UsageError {
  try {
    parseArgs(argv)
  } catch (e) {
    if (e instanceof UsageError) return e
    throw e
  }
  throw new Error(`parseArgs(${JSON.stringify(argv)}) did not throw`)
}

describe('parseArgs: tags, sources and inputs', () => {
  it('takes -t TAG, -tTAG and positional sources', () => {
    expect(parseArgs(['-t', TAG, `-t${LATEST}`, S1, S2])).toEqual({
      kind: 'run',
      inputs: { tags: `${TAG}\n${LATEST}`, sources: `${S1}\n${S2}` },
      secretsOnCommandLine: [],
      plan: undefined,
      json: false,
      verbose: false,
      stdin: undefined
    })
  })

  it('takes --tags and --sources, with --sources before the positional ones', () => {
    const c = run([S2, '--tags', TAG, '--tags=' + LATEST, '--sources', S1])
    expect(c.inputs).toEqual({ tags: `${TAG}\n${LATEST}`, sources: `${S1}\n${S2}` })
  })

  it('takes everything after -- as a source, even what looks like an option', () => {
    const c = run(['-t', TAG, '--', S1, '--json', '-t'])
    expect(c.inputs).toEqual({ tags: TAG, sources: `${S1}\n--json\n-t` })
    expect(c.json).toBe(false)
  })

  it('takes every input of the action but plan as an option of the same name', () => {
    for (const name of INPUT_NAMES.filter((n) => n !== 'plan')) {
      const c = run([`--${name}=value`])
      expect([name, c.inputs]).toEqual([name, { [name]: 'value' }])
    }
  })

  it('takes a scalar input as --name VALUE or --name=VALUE', () => {
    expect(run(['--format', 'oci', '--retries=3', '--timeout', '60']).inputs).toEqual({
      format: 'oci',
      retries: '3',
      timeout: '60'
    })
    // An = inside the value belongs to the value.
    expect(run(['--source-repository=a=b']).inputs).toEqual({ 'source-repository': 'a=b' })
  })

  it.each([
    'tags',
    'sources',
    'platforms',
    'annotations',
    'require-platforms',
    'insecure-registries',
    'registry-auth'
  ])('adds up --%s given more than once, one value a line', (name) => {
    const c = run([`--${name}`, 'one', `--${name}=two`, `--${name}`, 'three'])
    expect(c.inputs[name]).toBe('one\ntwo\nthree')
  })

  it.each([
    ['format', ['--format', 'oci', '--format=docker']],
    ['retries', ['--retries=1', '--retries', '1']],
    ['username', ['--username', 'a', '--username', 'b']],
    ['password', ['--password', 'a', '--password', 'b']],
    ['digests-dir', ['--digests-dir', 'a', '--digests-dir', 'b']],
    ['dry-run', ['--dry-run', '--no-dry-run']],
    ['append', ['--append=true', '--append', 'false']]
  ])('refuses scalar input --%s given twice', (name, argv) => {
    expect(usageError(argv).message).toBe(`option --${name} is given more than once`)
  })
})

describe('parseArgs: boolean inputs', () => {
  it.each([
    [['--dry-run'], 'true', []],
    [['--dry-run=true'], 'true', []],
    [['--dry-run=false'], 'false', []],
    [['--no-dry-run'], 'false', []],
    [['--dry-run', 'true'], 'true', []],
    [['--dry-run', 'false'], 'false', []],
    [['--dry-run', S1], 'true', [S1]],
    [[S1, '--dry-run'], 'true', [S1]]
  ])('%j gives dry-run %s', (argv, value, sources) => {
    const c = run(argv)
    expect(c.inputs['dry-run']).toBe(value)
    expect(c.inputs.sources).toBe(sources.length ? sources.join('\n') : undefined)
  })

  it.each([
    'dry-run',
    'append',
    'copy-referrers',
    'preserve-digest',
    'allow-extra-platforms',
    'github-annotations'
  ])('--%s alone is true, --no-%s false', (name) => {
    expect(run([`--${name}`]).inputs).toEqual({ [name]: 'true' })
    expect(run([`--no-${name}`]).inputs).toEqual({ [name]: 'false' })
    expect(run([`--${name}`, 'false']).inputs).toEqual({ [name]: 'false' })
  })

  it('refuses a value on --no-<input>, and --no- before an input that is not boolean', () => {
    expect(usageError(['--no-dry-run=true']).message).toBe('option --no-dry-run takes no value')
    expect(usageError(['--no-format']).message).toBe('unknown option --no-format')
  })
})

describe('parseArgs: flags, help and version', () => {
  it('sets --json and --verbose', () => {
    const c = run(['--json', '--verbose', '-t', TAG, S1])
    expect(c.json).toBe(true)
    expect(c.verbose).toBe(true)
    expect(c.inputs).toEqual({ tags: TAG, sources: S1 })
  })

  it.each([
    [['--help'], 'help'],
    [['-h'], 'help'],
    [['--version'], 'version'],
    [['--version', '--help'], 'help'],
    [['--verbose', '--version'], 'version'],
    // Help is given even when the rest of the command line would be refused.
    [['--plan', 'release.yml', '-t', TAG, '--help'], 'help']
  ])('%j asks for %s', (argv, kind) => {
    expect(parseArgs(argv)).toEqual({ kind })
  })

  it.each(['json', 'help', 'version', 'verbose', 'password-stdin', 'registry-auth-stdin'])(
    'refuses a value on --%s',
    (flag) => {
      expect(usageError([`--${flag}=yes`]).message).toBe(`option --${flag} takes no value`)
    }
  )

  it.each([
    [['--format'], 'option --format needs a value'],
    [['-t'], 'option -t needs a value'],
    [['--plan'], 'option --plan needs a value'],
    [['--tags'], 'option --tags needs a value']
  ])('%j: %s', (argv, message) => {
    expect(usageError(argv).message).toBe(message)
  })
})

describe('parseArgs: unknown options', () => {
  it.each([
    ['--dryrun', 'unknown option --dryrun (did you mean --dry-run?)'],
    ['--tag', 'unknown option --tag (did you mean --tags?)'],
    ['--verbsoe', 'unknown option --verbsoe (did you mean --verbose?)'],
    ['--plna', 'unknown option --plna (did you mean --plan?)'],
    ['--registry-auths', 'unknown option --registry-auths (did you mean --registry-auth?)'],
    ['--password-stdn', 'unknown option --password-stdn (did you mean --password-stdin?)'],
    ['--frobnicate', 'unknown option --frobnicate'],
    ['-x', 'unknown option -x'],
    ['-v', 'unknown option -v']
  ])('%s', (arg, message) => {
    const e = usageError(['-t', TAG, arg, S1])
    expect(e).toBeInstanceOf(UsageError)
    expect(e.message).toBe(message)
  })
})

describe('parseArgs: --plan and stdin', () => {
  it('takes --plan FILE with run inputs, and --plan - reads stdin', () => {
    expect(parseArgs(['--plan', 'release.yml', '--dry-run', '--retries', '2', '--json'])).toEqual({
      kind: 'run',
      inputs: { 'dry-run': 'true', retries: '2' },
      secretsOnCommandLine: [],
      plan: 'release.yml',
      json: true,
      verbose: false,
      stdin: undefined
    })
    const c = run(['--plan=-'])
    expect(c.plan).toBe('-')
    expect(c.stdin).toBe('plan')
    expect(run(['--plan', '-']).stdin).toBe('plan')
  })

  it('refuses --plan given twice', () => {
    expect(usageError(['--plan', 'a.yml', '--plan=b.yml']).message).toBe(
      'option --plan is given more than once'
    )
  })

  it.each([
    [['-t', TAG], '--tags'],
    [[S1], 'sources'],
    [['--sources', S1], 'sources'],
    [['--digests-dir', 'digests'], '--digests-dir'],
    [['--metadata-json', '{}'], '--metadata-json'],
    [
      ['--metadata-json', '{}', S1, '--digests-dir', 'd', '-t', TAG],
      '--tags, sources, --digests-dir, --metadata-json'
    ]
  ])('refuses --plan with %j', (argv, named) => {
    expect(usageError(['--plan', 'release.yml', ...argv]).message).toBe(
      `--plan gives each image its tags and sources: ${named} cannot be given with it`
    )
  })

  it('reads the password or registry-auth lines from stdin', () => {
    const c = run(['--username', 'ci', '--password-stdin', '-t', TAG, S1])
    expect(c.stdin).toBe('password')
    expect(c.inputs).toEqual({ username: 'ci', tags: TAG, sources: S1 })
    expect(c.secretsOnCommandLine).toEqual([])
    expect(run(['--registry-auth-stdin', '-t', TAG, S1]).stdin).toBe('registry-auth')
    // The plan from a file leaves stdin to the password.
    const p = run(['--plan', 'release.yml', '--password-stdin'])
    expect([p.plan, p.stdin]).toEqual(['release.yml', 'password'])
  })

  it.each([
    [['--password-stdin', '--plan', '-'], '--password-stdin and --plan -'],
    [['--registry-auth-stdin', '--plan=-'], '--registry-auth-stdin and --plan -'],
    [
      ['--password-stdin', '--registry-auth-stdin', '-t', TAG, S1],
      '--password-stdin and --registry-auth-stdin'
    ]
  ])('refuses two readers of stdin: %j', (argv, both) => {
    expect(usageError(argv).message).toBe(`stdin can hold one thing only, but ${both} both read it`)
  })

  it('refuses a secret given both as an option and on stdin', () => {
    expect(usageError(['--password', 'p', '--password-stdin', '-t', TAG, S1]).message).toBe(
      '--password and --password-stdin: give one of them'
    )
    expect(
      usageError(['--registry-auth-stdin', '--registry-auth', 'r.example=u:p', '-t', TAG, S1])
        .message
    ).toBe('--registry-auth and --registry-auth-stdin: give one of them')
  })
})

describe('parseArgs: secrets on the command line', () => {
  it('lists password, registry-auth and github-token given as options, each once', () => {
    const c = run([
      '--github-token',
      'ghs_token',
      '--username',
      'ci',
      '--password=p4ss',
      '--registry-auth',
      'one.example=u:p',
      '--registry-auth',
      'two.example=v:q',
      '-t',
      TAG,
      S1
    ])
    expect(c.secretsOnCommandLine).toEqual(['github-token', 'password', 'registry-auth'])
    expect(c.inputs).toEqual({
      'github-token': 'ghs_token',
      username: 'ci',
      password: 'p4ss',
      'registry-auth': 'one.example=u:p\ntwo.example=v:q',
      tags: TAG,
      sources: S1
    })
  })

  it('lists none when no secret is an option', () => {
    expect(run(['--username', 'ci', '-t', TAG, S1]).secretsOnCommandLine).toEqual([])
  })
})

describe('help, version and outputs', () => {
  it('lists every input of the action, --plan and the flags in the help text', () => {
    const missing = [...INPUT_NAMES, 'json', 'help', 'version', 'verbose']
      .concat(['password-stdin', 'registry-auth-stdin'])
      .filter((name) => !new RegExp(`--${name}(?![a-z-])`).test(USAGE))
    expect(missing).toEqual([])
    expect(USAGE).toContain('-t, --tags TAG')
    expect(USAGE).toContain('-h, --help')
    expect(USAGE).toContain('--plan FILE')
  })

  it('names only options that parseArgs knows in the help text', () => {
    const options = [...new Set(USAGE.match(/--[a-z][a-z-]*/g))]
    const unknown = options.filter((option) => {
      try {
        parseArgs([option, 'value'])
        return false
      } catch (e) {
        return e instanceof UsageError && e.message.startsWith('unknown option')
      }
    })
    expect(unknown).toEqual([])
  })

  it('reports the version of package.json', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }
    expect(VERSION).toBe(pkg.version)
  })

  it('has the outputs of action.yml: OUTPUT_NAMES and results', () => {
    const yml = readFileSync('action.yml', 'utf8')
    const outputs = yml.slice(yml.indexOf('\noutputs:'), yml.indexOf('\nruns:'))
    const names = [...outputs.matchAll(/^ {2}([a-z-]+):$/gm)].map((m) => m[1])
    expect(names.length).toBeGreaterThan(0)
    expect([...OUTPUT_NAMES, 'results'].sort()).toEqual(names.sort())
  })
})

describe('forms people type', () => {
  it('reads -t=REF as the tag REF', () => {
    expect(run(['-t=r.example/a:1', 'src']).inputs.tags).toBe('r.example/a:1')
  })

  it('takes True and FALSE after a flag as its value', () => {
    expect(run(['--dry-run', 'True', 'src']).inputs).toEqual({ 'dry-run': 'True', sources: 'src' })
    expect(run(['--append', 'FALSE', 'src']).inputs).toEqual({ append: 'FALSE', sources: 'src' })
  })

  it('shows help when asked, whatever else is on the line', () => {
    expect(parseArgs(['--bogus', '--help'])).toEqual({ kind: 'help' })
    expect(parseArgs(['-h', '--format'])).toEqual({ kind: 'help' })
    // After --, -h is a source.
    expect(run(['-t', 'x', '--', '-h']).inputs.sources).toBe('-h')
  })

  it('names an unknown short option by its letter only: what follows may be a secret', () => {
    const message = usageError(['-psecret123']).message
    expect(message).toBe('unknown option -p')
    expect(message).not.toContain('secret123')
  })
})
