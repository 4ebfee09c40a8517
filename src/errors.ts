// The base of every error a user fixes by changing an input or the registry's set-up: the action
// reports these as they are, without the "merge failed:" prefix that marks everything else.

export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}
