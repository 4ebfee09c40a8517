// The action's log: every line goes through inert(), so that nothing a registry or an image sent
// can break a line or start a workflow command, whatever message it ends up in.
import * as core from '@actions/core'
import { inert } from './core/inert.js'
import type { Logger } from './logger.js'

export interface ActionLog extends Logger {
  notice(message: string): void
  /** Marks the step failed with `message` as its error. */
  fail(message: string): void
}

export const actionLog: ActionLog = {
  info: (m) => core.info(inert(m)),
  warning: (m) => core.warning(inert(m)),
  debug: (m) => core.debug(inert(m)),
  notice: (m) => core.notice(inert(m)),
  fail: (m) => core.setFailed(inert(m)),
  group: (name, fn) => core.group(inert(name), fn)
}
