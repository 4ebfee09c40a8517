// The action's entry point, as runners call it.
import { run } from './main.js'

await run()
