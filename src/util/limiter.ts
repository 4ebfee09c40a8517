// A counting semaphore: bounds how many registry requests are in flight at once.

export class Limiter {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new Error(`concurrency must be a positive integer, got ${max}`)
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    // A released slot passes straight to a waiter, so no newcomer can take it in between.
    if (this.active >= this.max) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await task()
    } finally {
      const next = this.waiting.shift()
      if (next) next()
      else this.active--
    }
  }
}

/** Like Promise.all over a map, but every task is started at once and the first error wins after all settle. */
export async function allSettledOrThrow<T>(tasks: Array<Promise<T>>): Promise<T[]> {
  const results = await Promise.allSettled(tasks)
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  return results.map((r) => (r as PromiseFulfilledResult<T>).value)
}

/** Memoises an async function by key, so concurrent callers share one request. */
export class OnceMap<T> {
  private readonly map = new Map<string, Promise<T>>()
  /** Records a value already known under another key (a manifest fetched by tag is also its digest's). */
  seed(key: string, value: T): void {
    if (!this.map.has(key)) this.map.set(key, Promise.resolve(value))
  }

  /** What is known or under way for `key`, without starting anything. */
  peek(key: string): Promise<T> | undefined {
    return this.map.get(key)
  }

  get(key: string, make: () => Promise<T>): Promise<T> {
    let p = this.map.get(key)
    if (!p) {
      p = make()
      this.map.set(key, p)
      // A failed attempt must not poison the cache for a later retry.
      p.catch(() => this.map.delete(key))
    }
    return p
  }
}
