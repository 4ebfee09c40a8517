// Stands in for @actions/http-client in the bundle. @actions/core imports it only for
// getIDToken (OIDC), which the action never calls; bundled, it would load all of undici (fetch,
// WebSocket, caches) at start-up. Should anything call it, it fails saying so.
function notBundled() {
  throw new Error('@actions/http-client is not bundled with multiarch-merge')
}

export class HttpClient {
  constructor() {
    notBundled()
  }
}

export class BearerCredentialHandler {
  constructor() {
    notBundled()
  }
}
