// The action's entry point, as runners call it. run() reports its own failures (never rejects).
import { run } from './main.js'

void run()
