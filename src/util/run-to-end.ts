// An entry point's main promise, run to its end. Node exits once nothing is left to wait on, even
// with a promise still pending (one that nobody will ever settle): an ES module's top-level await
// then exited 13 with a warning, but a CommonJS entry would exit 0, its step green and its outputs
// never written. This keeps that case a failure.

/**
 * Runs `main`; if the process is about to exit before `main`'s promise settled, calls
 * `onUnfinished` (synchronous: it runs in the 'exit' event) to report it and set the exit code.
 * A rejection of `main` stays unhandled, as with top-level await: Node prints it and exits 1.
 */
export function runToEnd(main: () => Promise<unknown>, onUnfinished: () => void): void {
  let settled = false
  const onExit = (): void => {
    if (!settled) onUnfinished()
  }
  process.once('exit', onExit)
  void main().then(
    () => {
      settled = true
    },
    (e: unknown) => {
      settled = true
      throw e
    }
  )
}
