// The errors of a registry that did not answer in time, on every path. They carry undici's codes
// and words: requests through a proxy still go through undici, and retry lines and messages
// ("UND_ERR_HEADERS_TIMEOUT (Headers Timeout Error)") stay the same whichever path failed.

class TimeoutError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly code: string
  ) {
    super(message)
  }
}

/** No connection (TCP and TLS) within the request timeout. */
export function connectTimeout(): Error {
  return new TimeoutError('ConnectTimeoutError', 'Connect Timeout Error', 'UND_ERR_CONNECT_TIMEOUT')
}

/** No answer in time once the request was sent, or no progress while sending it. */
export function headersTimeout(): Error {
  return new TimeoutError('HeadersTimeoutError', 'Headers Timeout Error', 'UND_ERR_HEADERS_TIMEOUT')
}

/** A body that sent nothing for the request timeout while its reader waited. */
export function bodyTimeout(): Error {
  return new TimeoutError('BodyTimeoutError', 'Body Timeout Error', 'UND_ERR_BODY_TIMEOUT')
}

/** Why `signal` aborted (a timeout, the step's deadline), as the error a request fails with. */
export function reasonOf(signal?: AbortSignal): Error {
  const reason: unknown = signal?.reason
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`)
}
