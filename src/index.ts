// The action's entry point, as runners call it.
import { run } from './main.js'
import { tuneRuntime } from './runtime.js'

tuneRuntime()
await run()
