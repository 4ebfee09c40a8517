// Writes the README's Inputs and Outputs tables from action.yml, so the two never disagree.
// `--check` fails instead of writing when the README is out of date (run by npm run lint).
import { readFileSync, writeFileSync } from 'node:fs'
import * as prettier from 'prettier'

/** Reads the flat inputs/outputs maps of action.yml (single-quoted scalars, two-space indent). */
function readSection(yml, section) {
  const lines = yml.split('\n')
  const start = lines.indexOf(`${section}:`)
  const out = []
  for (let i = start + 1; i < lines.length && /^( |$)/.test(lines[i]); i++) {
    const name = /^  ([a-z0-9-]+):$/.exec(lines[i])
    if (name) {
      out.push({ name: name[1] })
      continue
    }
    const field = /^    ([a-z]+): (.*)$/.exec(lines[i])
    if (field && out.length) {
      let v = field[2].trim()
      if (v.startsWith("'")) v = v.slice(1, -1).replaceAll("''", "'")
      else if (v.startsWith('"')) v = JSON.parse(v)
      out[out.length - 1][field[1]] = v
    }
  }
  return out
}

const cell = (s) => s.replaceAll('|', '\\|').replaceAll('\n', ' ')
const yml = readFileSync('action.yml', 'utf8')
const inputs = readSection(yml, 'inputs')
  .map(
    (i) =>
      `| \`${i.name}\` | ${i.default ? `\`${cell(i.default)}\`` : ''} | ${cell(i.description)} |`
  )
  .join('\n')
const outputs = readSection(yml, 'outputs')
  .map((o) => `| \`${o.name}\` | ${cell(o.description)} |`)
  .join('\n')
const tables = {
  inputs: `| name | default | description |\n| --- | --- | --- |\n${inputs}`,
  outputs: `| name | description |\n| --- | --- |\n${outputs}`
}

let readme = readFileSync('README.md', 'utf8')
for (const [key, table] of Object.entries(tables)) {
  const re = new RegExp(`(<!-- ${key}:start -->)[\\s\\S]*?(<!-- ${key}:end -->)`)
  if (!re.test(readme))
    throw new Error(`README.md lacks the <!-- ${key}:start --> / <!-- ${key}:end --> markers`)
  readme = readme.replace(re, `$1\n\n${table}\n\n$2`)
}
readme = await prettier.format(readme, {
  ...(await prettier.resolveConfig('README.md')),
  parser: 'markdown'
})
if (process.argv.includes('--check')) {
  if (readme !== readFileSync('README.md', 'utf8')) {
    console.error(
      'README.md inputs/outputs tables differ from action.yml: run node scripts/docs.mjs'
    )
    process.exit(1)
  }
} else {
  writeFileSync('README.md', readme)
}
