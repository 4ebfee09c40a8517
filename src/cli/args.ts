// The command line: every action input is a long option of the same name, sources are
// positional. Parsing only: nothing is read from the environment or a registry here.
import { UserError } from '../errors.js'
import { INPUT_NAMES } from '../inputs.js'

/** The command line is wrong (an unknown option, a missing value): exit 2. */
export class UsageError extends UserError {}

/** Inputs that are true or false: `--dry-run` alone means true. */
const BOOLEAN_INPUTS = [
  'dry-run',
  'append',
  'copy-referrers',
  'preserve-digest',
  'allow-extra-platforms',
  'github-annotations'
]

/** Inputs that take a list: given more than once, the values add up, one a line. */
const LIST_INPUTS = [
  'tags',
  'sources',
  'platforms',
  'annotations',
  'require-platforms',
  'insecure-registries',
  'registry-auth'
]

/** Options of the command line itself, which take no value. */
const FLAGS = ['json', 'help', 'version', 'verbose', 'password-stdin', 'registry-auth-stdin']

/** Inputs whose value is a secret: on the command line, other users of the machine can read it. */
export const SECRET_INPUTS = ['password', 'registry-auth', 'github-token']

export interface Command {
  kind: 'run'
  /** Input values by input name, as the action would read them. */
  inputs: Record<string, string>
  /** Secret inputs given as options (not from stdin or the environment), for a warning. */
  secretsOnCommandLine: string[]
  /** --plan: a file, or `-` for stdin. */
  plan?: string
  json: boolean
  verbose: boolean
  /** Which input stdin holds, if any. */
  stdin?: 'password' | 'registry-auth' | 'plan'
}

export type Parsed = { kind: 'help' } | { kind: 'version' } | Command

const INPUTS = (INPUT_NAMES as readonly string[]).filter((n) => n !== 'plan')

export function parseArgs(argv: string[]): Parsed {
  // Help wins over anything else on the line, mistakes included (before a -- only).
  const options = argv.includes('--') ? argv.slice(0, argv.indexOf('--')) : argv
  if (options.includes('--help') || options.includes('-h')) return { kind: 'help' }
  const inputs: Record<string, string> = {}
  const flags = new Set<string>()
  const sources: string[] = []
  let plan: string | undefined
  const secrets: string[] = []
  const set = (name: string, value: string): void => {
    if (name in inputs && !LIST_INPUTS.includes(name))
      throw new UsageError(`option --${name} is given more than once`)
    inputs[name] = name in inputs ? `${inputs[name]}\n${value}` : value
    if (SECRET_INPUTS.includes(name) && !secrets.includes(name)) secrets.push(name)
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const next = (option: string): string => {
      if (i + 1 >= argv.length) throw new UsageError(`option ${option} needs a value`)
      return argv[++i]
    }
    if (arg === '--') {
      sources.push(...argv.slice(i + 1))
      break
    }
    if (arg === '-h') {
      flags.add('help')
      continue
    }
    if (arg === '-t') {
      set('tags', next('-t'))
      continue
    }
    if (arg.startsWith('-t') && !arg.startsWith('--')) {
      set('tags', arg.slice(arg.startsWith('-t=') ? 3 : 2))
      continue
    }
    if (!arg.startsWith('--')) {
      // Only the option's letter: what follows it may be a value, even a secret.
      if (arg.startsWith('-') && arg !== '-')
        throw new UsageError(`unknown option ${arg.slice(0, 2)}`)
      sources.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
    const inline = eq < 0 ? undefined : arg.slice(eq + 1)
    if (FLAGS.includes(name)) {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`)
      flags.add(name)
    } else if (name.startsWith('no-') && BOOLEAN_INPUTS.includes(name.slice(3))) {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`)
      set(name.slice(3), 'false')
    } else if (BOOLEAN_INPUTS.includes(name)) {
      // `--dry-run true` and `--dry-run=false` too; any other next word is a source.
      const word = argv[i + 1]
      set(name, inline ?? (/^(true|false)$/i.test(word ?? '') ? argv[++i] : 'true'))
    } else if (name === 'plan') {
      if (plan !== undefined) throw new UsageError('option --plan is given more than once')
      plan = inline ?? next('--plan')
    } else if (INPUTS.includes(name)) {
      set(name, inline ?? next(`--${name}`))
    } else {
      const near = nearest(name, [...INPUTS, ...FLAGS, 'plan'])
      throw new UsageError(`unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`)
    }
  }
  if (flags.has('help')) return { kind: 'help' }
  if (flags.has('version')) return { kind: 'version' }
  if (sources.length) set('sources', sources.join('\n'))
  const stdin = stdinUse(flags, plan)
  if (plan !== undefined) {
    const around = ['tags', 'sources', 'digests-dir', 'metadata-json'].filter((n) => n in inputs)
    if (around.length)
      throw new UsageError(
        `--plan gives each image its tags and sources: ${around.map((n) => (n === 'sources' ? 'sources' : `--${n}`)).join(', ')} cannot be given with it`
      )
  }
  if (stdin && stdin !== 'plan' && stdin in inputs)
    throw new UsageError(`--${stdin} and --${stdin}-stdin: give one of them`)
  return {
    kind: 'run',
    inputs,
    secretsOnCommandLine: secrets,
    plan,
    json: flags.has('json'),
    verbose: flags.has('verbose'),
    stdin
  }
}

function stdinUse(flags: Set<string>, plan: string | undefined): Command['stdin'] {
  const uses: Array<NonNullable<Command['stdin']>> = []
  if (flags.has('password-stdin')) uses.push('password')
  if (flags.has('registry-auth-stdin')) uses.push('registry-auth')
  if (plan === '-') uses.push('plan')
  if (uses.length > 1)
    throw new UsageError(
      `stdin can hold one thing only, but ${uses.map((u) => (u === 'plan' ? '--plan -' : `--${u}-stdin`)).join(' and ')} both read it`
    )
  return uses[0]
}

/** The option a mistyped name most likely meant, if one is close. */
function nearest(name: string, names: string[]): string | undefined {
  let best: { n: string; d: number } | undefined
  for (const n of names) {
    const d = distance(name, n)
    if (d <= Math.max(2, Math.floor(n.length / 4)) && (!best || d < best.d)) best = { n, d }
  }
  return best?.n
}

function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]
}
