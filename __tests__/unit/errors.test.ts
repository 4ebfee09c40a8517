import { describe, expect, it } from '@jest/globals'
import { unwrapIndex } from '../../src/core/children.js'
import { ManifestError, parseManifest } from '../../src/core/manifest.js'
import { platformFromConfig } from '../../src/core/platform.js'
import { parseReference, ReferenceSyntaxError } from '../../src/core/reference.js'
import { UserError } from '../../src/errors.js'
import { InputError, parseInputs } from '../../src/inputs.js'

function thrown(fn: () => unknown): Error {
  try {
    fn()
  } catch (e) {
    return e as Error
  }
  throw new Error('nothing was thrown')
}

describe('errors the user fixes', () => {
  it('are UserErrors named for their class', () => {
    const e = thrown(() => parseReference('Bad/Name'))
    expect(e).toBeInstanceOf(ReferenceSyntaxError)
    expect(e).toBeInstanceOf(UserError)
    expect(e.name).toBe('ReferenceSyntaxError')
  })

  it('keep the error they wrap as the cause', () => {
    const e = thrown(() => parseInputs((n) => (n === 'tags' ? 'Bad/Name' : '')))
    expect(e).toBeInstanceOf(InputError)
    expect(e.name).toBe('InputError')
    expect(e.message).toMatch(/^input tags: invalid image reference "Bad\/Name"/)
    expect(e.cause).toBeInstanceOf(ReferenceSyntaxError)
  })

  it('include what a source holds that cannot go into an index', () => {
    const build = thrown(() =>
      unwrapIndex(
        {
          schemaVersion: 2,
          manifests: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: 'x', size: 1 }]
        },
        'source s'
      )
    )
    const json = thrown(() =>
      parseManifest({ bytes: Buffer.from('{'), mediaType: '', digest: 'x' }, 'source s')
    )
    const config = thrown(() => platformFromConfig(Buffer.from('{}'), 'source s'))
    for (const e of [build, json, config]) {
      expect(e).toBeInstanceOf(ManifestError)
      expect(e).toBeInstanceOf(UserError)
    }
    expect(json.cause).toBeInstanceOf(SyntaxError)
  })
})
