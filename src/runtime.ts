// Settings for a process that lives a second or two and parses a few HTTP responses.
import { setFlagsFromString } from 'node:v8'

/**
 * Keeps undici's HTTP parser (llhttp, WebAssembly) on V8's baseline compiler for the length of
 * a merge. By default V8 recompiles its hot functions with TurboFan on background threads
 * after a small budget, which a short run never earns back: about 0.2 s of CPU and 35 MB, and
 * the process waits for those jobs before it can exit. A budget this large is spent only by a
 * long copy of big blobs, which then gets TurboFan as before. (Node 24 ignores --liftoff-only
 * set at run time; the budget works on 20 and 24.) Called when undici is loaded (requests through
 * a proxy), before its first connection compiles the parser.
 */
export function tuneRuntime(): void {
  setFlagsFromString('--wasm-tiering-budget=1000000000')
}
