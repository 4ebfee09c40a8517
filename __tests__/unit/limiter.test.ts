import { describe, expect, it } from '@jest/globals'
import { Limiter } from '../../src/util/limiter.js'

describe('Limiter', () => {
  it('never runs more than max tasks, even when callers arrive as slots are released', async () => {
    const limiter = new Limiter(2)
    let active = 0
    let peak = 0
    const task = async (): Promise<void> => {
      active++
      peak = Math.max(peak, active)
      await Promise.resolve()
      active--
    }
    const runs: Array<Promise<void>> = []
    for (let i = 0; i < 50; i++) {
      // A caller that arrives in the microtask right after a release.
      runs.push(limiter.run(task).then(() => void runs.push(limiter.run(task))))
    }
    while (runs.length) await runs.shift()
    expect(peak).toBe(2)
  })
})
