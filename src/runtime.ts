// Settings for a process that lives a second or two and parses a few HTTP responses.
import { setFlagsFromString } from 'node:v8'

/**
 * Keeps undici's HTTP parser (llhttp, WebAssembly) on V8's baseline compiler. By default V8
 * recompiles its hot functions with TurboFan on background threads, which a short run never
 * earns back: about 0.2 s of CPU and 35 MB, and the process waits for those jobs before it can
 * exit. Called before the first connection, when undici compiles the parser.
 */
export function tuneRuntime(): void {
  setFlagsFromString('--liftoff-only')
}
