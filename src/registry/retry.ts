// When to try a request again, and how long to wait: exponential backoff with jitter, the
// registry's Retry-After, a retry count and the step's deadline.
import { RetriesExhaustedError, type RegistryErrorDetails } from './errors.js'

export interface RetryOptions {
  /** Retries after the first attempt for transient failures (429, 5xx, resets, timeouts). */
  retries: number
  /**
   * The step's budget (epoch ms): no retry is scheduled whose delay would end past it, and a
   * retry waits for headers no longer than what is left of it. (The request path also stops
   * every exchange at the deadline; tag pushes and their rollback get a short grace.)
   */
  deadline?: number
  /** Longest wait honoured from Retry-After, and the cap of the exponential backoff. */
  maxRetryDelayMs?: number
  baseDelayMs?: number
  sleep?: (ms: number) => Promise<void>
  /** Clock and jitter source, replaceable in tests. */
  now?: () => number
  random?: () => number
}

/** One failed attempt, as the retry decision and the messages see it. */
export interface Failure {
  /** "HTTP 503 (UNAVAILABLE: ...)" or "ECONNRESET (the registry closed the connection ...)". */
  reason: string
  status?: number
  /** The registry's Retry-After, in ms. */
  hintedMs?: number
}

/** Delay from a Retry-After header (seconds or HTTP date), or undefined. */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
  const t = Date.parse(value)
  return Number.isNaN(t) ? undefined : Math.max(0, t - now)
}

export class RetryPolicy {
  readonly now: () => number

  constructor(private readonly opts: RetryOptions) {
    this.now = opts.now ?? Date.now
  }

  /**
   * The wait before the retry that follows failed attempt `attempt` (0 = first), or the error to
   * throw when retries or the budget have run out. `what` names the request in that error.
   */
  delayAfter(
    attempt: number,
    failure: Failure,
    what: string,
    details: RegistryErrorDetails
  ): number {
    const { retries, deadline } = this.opts
    const cap = this.opts.maxRetryDelayMs ?? 30_000
    const base = this.opts.baseDelayMs ?? 500
    const attempts = attempt + 1
    const last = `last error: ${failure.reason}`
    const err = { ...details, status: failure.status }
    if (attempt >= retries) {
      throw new RetriesExhaustedError(
        `${what} failed after ${attempts} attempt(s): the retry budget is exhausted (retries: ${retries}); ${last}`,
        err,
        attempts,
        false
      )
    }
    // Equal jitter on an exponential backoff; Retry-After wins (up to the cap) when sent.
    const backoff = Math.min(cap, base * 2 ** attempt)
    const delay =
      failure.hintedMs !== undefined
        ? Math.min(cap, failure.hintedMs)
        : Math.round(backoff / 2 + ((this.opts.random ?? Math.random)() * backoff) / 2)
    const left = deadline === undefined ? Infinity : deadline - this.now()
    if (delay >= left) {
      const asked =
        failure.hintedMs !== undefined ? ` (the registry asked to wait ${failure.hintedMs} ms)` : ''
      throw new RetriesExhaustedError(
        `${what} failed after ${attempts} attempt(s): the time budget (input timeout) is exhausted (${Math.max(0, Math.round(left))} ms left, the next retry would wait ${delay} ms${asked}); ${last}`,
        err,
        attempts,
        true
      )
    }
    return delay
  }

  sleep(ms: number): Promise<void> {
    return this.opts.sleep?.(ms) ?? new Promise((r) => setTimeout(r, ms))
  }

  /**
   * How long attempt `attempt` (0 = first) may wait for headers or between body chunks: a retry
   * gets no more than what is left of the budget, so a registry that stalls for good fails near
   * the deadline, not one timeout after it.
   */
  timeoutFor(attempt: number, requestTimeoutMs: number): number {
    const { deadline } = this.opts
    if (attempt === 0 || deadline === undefined) return requestTimeoutMs
    return Math.max(1, Math.min(requestTimeoutMs, deadline - this.now()))
  }
}
