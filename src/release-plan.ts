// Release plans: several images in one run, each with its own inputs, read from a YAML or JSON
// document. Every value is checked here, before any request, and errors name the plan, the
// image and the input.
import { readFileSync } from 'node:fs'
import { formatReference } from './core/reference.js'
import {
  InputError,
  INPUT_NAMES,
  parseImageInputs,
  parseInputs,
  parseRunInputs,
  RUN_INPUTS,
  type GithubContext,
  type ImageInputs,
  type InputReader,
  type RunInputs
} from './inputs.js'

/** What a run does: one image or several (a plan), and how it talks to registries. */
export interface RunSetup {
  images: ImageInputs[]
  run: RunInputs
  /** Whether the images came from a plan. */
  fromPlan: boolean
}

/** Inputs that name one image's tags and sources: a plan gives them per image, never around it. */
const PER_IMAGE_ONLY = ['tags', 'sources', 'digests-dir', 'metadata-json']

/**
 * The run the inputs describe: the plan input (or `plan`, the command line's --plan) when set,
 * else one merge. `get` reads the inputs around the plan, which apply to every image unless the
 * plan sets them.
 */
export async function readSetup(
  get: InputReader,
  onSecret: (s: string) => void,
  env: NodeJS.ProcessEnv,
  github?: GithubContext,
  plan: { name: string; text: string } | undefined = planInput(get('plan'))
): Promise<RunSetup> {
  if (!plan) {
    const inputs = parseInputs(get, onSecret, env, github)
    return { images: [inputs], run: inputs, fromPlan: false }
  }
  const around = PER_IMAGE_ONLY.filter((name) => get(name).trim() !== '')
  if (around.length) {
    throw new InputError(
      `input plan: ${around.join(', ')} must be empty when a plan is given (each image of the plan has its own)`
    )
  }
  return parsePlan(plan.text, plan.name, get, onSecret, env, github)
}

/** The plan input: the YAML or JSON text itself (more than one line, or `{...}`), or a path. */
export function planInput(value: string): { name: string; text: string } | undefined {
  const v = value.trim()
  if (!v) return undefined
  if (v.includes('\n') || v.startsWith('{')) return { name: 'input plan', text: v }
  return { name: `plan ${v}`, text: readPlanFile(v, 'input plan') }
}

export function readPlanFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (e) {
    const why =
      (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message
    throw new InputError(`${what}: cannot read the plan "${path}": ${why}`, { cause: e })
  }
}

type Values = Record<string, string>

export async function parsePlan(
  text: string,
  name: string,
  around: InputReader,
  onSecret: (s: string) => void,
  env: NodeJS.ProcessEnv,
  github?: GithubContext
): Promise<RunSetup> {
  const doc = await parseDocument(text, name)
  if (!isMapping(doc)) throw new InputError(`${name}: expected a mapping with an images list`)
  const unknown = Object.keys(doc).filter((k) => k !== 'images' && k !== 'defaults')
  if (unknown.length) {
    throw new InputError(
      `${name}: unknown key ${unknown.map((k) => `"${k}"`).join(', ')} (a plan has defaults and images)`
    )
  }
  const defaults = doc.defaults === undefined ? {} : values(doc.defaults, `${name}: defaults`)
  const misplaced = Object.keys(defaults).filter((k) => PER_IMAGE_ONLY.includes(k))
  if (misplaced.length) {
    throw new InputError(
      `${name}: defaults: ${misplaced.join(', ')} belong to each image, not to defaults`
    )
  }
  if (!Array.isArray(doc.images) || doc.images.length === 0) {
    throw new InputError(`${name}: images must be a list of one or more images`)
  }
  // metadata-action's variables describe one image: in a plan each image says what it wants.
  const planEnv = {
    ...env,
    DOCKER_METADATA_OUTPUT_JSON: undefined,
    DOCKER_METADATA_OUTPUT_ANNOTATIONS: undefined
  }
  const runGet: InputReader = (k) => defaults[k] ?? around(k)
  const images = (doc.images as unknown[]).map((entry, i) => {
    const where = `${name}: image ${i + 1}`
    const own = values(entry, where)
    const runLevel = Object.keys(own).filter((k) => RUN_INPUTS.includes(k))
    if (runLevel.length) {
      throw new InputError(
        `${where}: ${runLevel.join(', ')} ${runLevel.length > 1 ? 'apply' : 'applies'} to the whole run: set ${runLevel.length > 1 ? 'them' : 'it'} under defaults`
      )
    }
    if (!own.tags?.trim() && !own['metadata-json']?.trim())
      throw new InputError(`${where}: no tags (each image needs its own tags)`)
    try {
      return parseImageInputs((k) => own[k] ?? runGet(k), planEnv, github)
    } catch (e) {
      if (e instanceof InputError) throw new InputError(`${where}: ${e.message}`, { cause: e })
      throw e
    }
  })
  checkTagsOnce(images, name)
  let run: RunInputs
  try {
    run = parseRunInputs(
      runGet,
      images.flatMap((i) => i.tags),
      onSecret
    )
  } catch (e) {
    // Blame the plan only for what its defaults set; the rest came from around it.
    const set = Object.keys(defaults).filter((k) => RUN_INPUTS.includes(k))
    const fromPlan =
      e instanceof InputError && set.some((k) => new RegExp(`\\b${k}\\b`).test(e.message))
    if (fromPlan) throw new InputError(`${name}: defaults: ${e.message}`, { cause: e })
    throw e
  }
  // A dry run asked for anywhere is a dry run: a plan's defaults cannot turn it into a write.
  if (/^(true|True|TRUE)$/.test(around('dry-run').trim())) run.dryRun = true
  return { images, run, fromPlan: true }
}

async function parseDocument(text: string, name: string): Promise<unknown> {
  // Loaded only for a plan: a plain merge does not pay for the YAML parser at start-up.
  // yaml is CommonJS: bundled, its chunk gives it as the default export.
  const mod: typeof import('yaml') & { default?: typeof import('yaml') } = await import('yaml')
  const { LineCounter, parseDocument } = mod.default ?? mod
  const lines = new LineCounter()
  // Every scalar a string, as the action's inputs are: 1.10 stays 1.10, not the number 1.1.
  const doc = parseDocument(text, { uniqueKeys: true, schema: 'failsafe', lineCounter: lines })
  const error = doc.errors[0]
  if (error) {
    const at = lines.linePos(error.pos[0])
    throw new InputError(
      `${name}: not valid YAML or JSON (line ${at.line}, column ${at.col}): ${error.message.split('\n')[0]}`
    )
  }
  try {
    return doc.toJS({ maxAliasCount: 100 })
  } catch (e) {
    // An alias that names nothing, or too many aliases (a "billion laughs" document).
    throw new InputError(`${name}: not a usable YAML document: ${(e as Error).message}`, {
      cause: e
    })
  }
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** An image's (or the defaults') inputs as the action would read them: strings. */
function values(entry: unknown, where: string): Values {
  if (!isMapping(entry)) throw new InputError(`${where}: expected a mapping of inputs`)
  const out: Values = {}
  for (const [key, value] of Object.entries(entry)) {
    if (!(INPUT_NAMES as readonly string[]).includes(key) || key === 'plan') {
      throw new InputError(`${where}: "${key}" is not an input of multiarch-merge`)
    }
    out[key] = inputValue(value, `${where}: ${key}`, key === 'annotations')
  }
  return out
}

/**
 * A list becomes one entry a line, as the action's inputs take lists; a mapping (annotations
 * only) key=value lines; numbers and booleans their text.
 */
function inputValue(value: unknown, where: string, mapping: boolean): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  if (Array.isArray(value)) {
    return value
      .map((v) => {
        if (typeof v === 'string' || typeof v === 'number') return String(v)
        throw new InputError(`${where}: a list may hold only strings`)
      })
      .join('\n')
  }
  if (mapping && isMapping(value)) {
    return Object.entries(value)
      .map(([k, v]) => `${k}=${inputValue(v, `${where}: ${k}`, false)}`)
      .join('\n')
  }
  throw new InputError(
    `${where}: expected a string or a list${mapping ? ', or a mapping of key: value' : ''}`
  )
}

/** A tag can hold one index: two images naming it would race for it. */
function checkTagsOnce(images: ImageInputs[], name: string): void {
  const seen = new Map<string, number>()
  images.forEach((image, i) => {
    for (const t of image.tags) {
      const key = formatReference(t)
      const first = seen.get(key)
      if (first !== undefined && first !== i) {
        throw new InputError(
          `${name}: tag ${key} is in images ${first + 1} and ${i + 1}: a tag can hold only one of them`
        )
      }
      seen.set(key, i)
    }
  })
}
