// The command line's log on stderr: a line per phase and every warning (every line with
// --verbose), secrets masked, nothing a registry sent able to move the cursor or colour the
// terminal; on a terminal, a status line counting responses while a phase runs.
import { inert } from '../core/inert.js'
import type { Logger } from '../logger.js'

export interface Stream {
  write(text: string): unknown
  isTTY?: boolean
}

export class CliLog implements Logger {
  private readonly secrets = new Set<string>()
  private phase: string | undefined
  private responses = 0
  private shown = 0
  private statusShown = false

  constructor(
    private readonly err: Stream,
    private readonly verbose: boolean
  ) {}

  /** A value never to be printed. */
  mask(secret: string): void {
    if (secret) this.secrets.add(secret)
  }

  info(message: string): void {
    if (this.verbose) this.line(message)
  }

  warning(message: string): void {
    this.line(`warning: ${message}`)
  }

  debug(): void {}

  error(message: string): void {
    this.line(`error: ${message}`)
  }

  /** A line whatever the verbosity (the result of the run). */
  always(message: string): void {
    this.line(message)
  }

  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.line(`${name}...`)
    this.phase = name
    try {
      return await fn()
    } finally {
      this.phase = undefined
      this.clearStatus()
    }
  }

  /** A response arrived: the terminal's status line counts it. */
  response(): void {
    this.responses++
    if (!this.err.isTTY || !this.phase) return
    // At most a redraw every 20 responses, or the status line costs more than the work.
    if (this.responses - this.shown < 20 && this.statusShown) return
    this.shown = this.responses
    const n = this.responses
    this.err.write(
      `\r\x1b[2K  ${this.clean(this.phase)}: ${n} request${n === 1 ? '' : 's'} answered`
    )
    this.statusShown = true
  }

  private clearStatus(): void {
    if (this.statusShown) this.err.write('\r\x1b[2K')
    this.statusShown = false
  }

  private clean(text: string): string {
    let out = text
    for (const s of this.secrets) out = out.split(s).join('***')
    return inert(out)
  }

  private line(text: string): void {
    this.clearStatus()
    this.err.write(`${this.clean(text)}\n`)
  }
}
