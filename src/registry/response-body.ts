// A response body as the transport hands it out, whatever protocol carried it.
import { Readable } from 'node:stream'
import { bodyTimeout } from './timeouts.js'

export interface BodySource {
  /** Node's stream of the answer: an HTTP/1.1 IncomingMessage or an HTTP/2 stream. */
  stream: Readable
  /** Whether the registry ended the body itself (not a connection closed under it). */
  complete(): boolean
  /**
   * Called as the body is destroyed (dropped, failed, or read): stops what nobody will read, the
   * stream (HTTP/2) or the connection (HTTP/1.1, unless the answer was read to its end).
   */
  cancel(): void
  /** The longest the body may go without data while its reader waits. */
  gapMs: number
  /** Called when the body stalls: its connection may be dead. */
  onStall?: () => void
  /** The code of the error for a connection closed mid-body (one that is retried). */
  cutCode: string
}

/**
 * A response body with the guarantees a copy needs: it ends only when the registry ended it (a
 * connection closed mid-body, which Node reports as a plain end, an "aborted" error, or not at
 * all, is an error worth another attempt), and its gap timer runs only while the reader wants
 * data (a copy whose upload is slower than its download is not a stalled registry).
 */
export class ResponseBody extends Readable {
  private gap?: NodeJS.Timeout

  constructor(private readonly source: BodySource) {
    super()
    const { stream } = source
    this.arm()
    stream.on('data', (chunk: Buffer) => {
      this.arm()
      if (!this.push(chunk)) {
        stream.pause()
        this.disarm()
      }
    })
    stream.once('end', () => {
      this.disarm()
      if (source.complete()) this.push(null)
      else this.destroy(cutShort(source.cutCode))
    })
    // Node's words for a connection closed mid-body ("aborted") say less than ours.
    stream.on('error', (e: Error) => this.destroy(source.complete() ? e : cutShort(source.cutCode)))
    stream.once('close', () => {
      if (!this.destroyed && !stream.readableEnded) this.destroy(cutShort(source.cutCode))
    })
  }

  override _read(): void {
    if (!this.source.stream.isPaused()) return
    this.arm()
    this.source.stream.resume()
  }

  override _destroy(e: Error | null, callback: (e?: Error | null) => void): void {
    this.disarm()
    this.source.cancel()
    callback(e)
  }

  /** (Re)starts the gap timer: a cleared timer cannot be refreshed. */
  private arm(): void {
    if (this.gap) this.gap.refresh()
    else
      this.gap = setTimeout(() => {
        this.source.onStall?.()
        this.destroy(bodyTimeout())
      }, this.source.gapMs)
  }

  private disarm(): void {
    clearTimeout(this.gap)
    this.gap = undefined
  }
}

/** A connection closed before the end of the answer: transient, under the protocol's code. */
export function cutShort(code: string): Error {
  return Object.assign(new Error('the connection closed before the end of the answer'), { code })
}
