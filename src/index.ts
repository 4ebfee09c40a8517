// The action's entry point, as runners call it.
import { actionLog } from './action-log.js'
import { run } from './main.js'
import { runToEnd } from './util/run-to-end.js'

runToEnd(run, () =>
  actionLog.fail('the run stopped before it finished, with nothing left to wait for (a bug)')
)
