// WWW-Authenticate parsing (RFC 7235 auth-params, as registries send them).

export interface Challenge {
  scheme: string
  params: Record<string, string>
}

export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return []
  const out: Challenge[] = []
  const re = /\s*([A-Za-z][A-Za-z0-9_-]*)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*)))?\s*,?/g
  let current: Challenge | undefined
  let m: RegExpExecArray | null
  while ((m = re.exec(header)) !== null && m[0] !== '') {
    const [, name, quoted, bare] = m
    if (quoted === undefined && bare === undefined) {
      current = { scheme: name.toLowerCase(), params: {} }
      out.push(current)
    } else if (current) {
      current.params[name.toLowerCase()] =
        quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare
    }
  }
  return out
}
