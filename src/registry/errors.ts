// Errors that carry the registry and what was asked of it, so messages name both.

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string
  ) {
    super(message)
  }
}

/** Pulls the first OCI error code and message out of a registry error body. */
export function describeErrorBody(body: string): { code?: string; text: string } {
  try {
    const doc = JSON.parse(body) as {
      errors?: Array<{ code?: string; message?: string; detail?: unknown }>
    }
    const e = doc.errors?.[0]
    if (e) {
      return { code: e.code, text: [e.code, e.message].filter(Boolean).join(': ') }
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  const text = body.trim().slice(0, 300)
  return { text }
}
