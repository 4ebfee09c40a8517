// Profiles of the hosted registries: GHCR, Docker Hub, Amazon ECR, Google Artifact Registry,
// Azure Container Registry. Each behaviour is emulated in front of the real Distribution
// registry, with its public source beside it; what is not written here is Distribution's own
// behaviour (which these services share, being built on it or on its API).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { immutableTags, largeHeaders, ociSubjectHeader, referrersApi } from './rules.js'
import { type ProfileRule, type ProfileSpec } from './types.js'

/**
 * GHCR. Token server on the registry's own host at /token, challenge with the scope:
 * `Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:…:pull"` (GHCR's
 * answer as renovatebot/renovate's lib/modules/datasource/docker/index.spec.ts "supports ghcr"
 * replays it; the token URL https://ghcr.io/token?service=ghcr.io&scope=… in
 * opensciencegrid/cvmfs-singularity-sync#353).
 */
export function ghcr(packages: { url: string }): ProfileSpec {
  // GHCR answers the referrers endpoint with 303 See Other to another host
  // (github.com/-/v2/packages/…), which rate-limits and truncates the digest
  // (dataaxiom/ghcr-cleanup-action#13, actions/attest-build-provenance#71). Others saw a plain
  // 404 (rtvkiz/minimal#7): option referrers: 'none'. Either way the tag fallback is the way.
  const redirect: ProfileRule = (req, res, route, ctx) => {
    if (route.kind !== 'referrers' || req.method !== 'GET') return false
    if (ctx.opts(route.repo).referrers !== 'redirect') return false
    req.resume()
    const truncated = (route.ref ?? '').slice(0, 'sha256:'.length + 12)
    ctx.note({ kind: 'referrers-redirect', repo: route.repo, detail: route.ref })
    res.writeHead(303, {
      location: `${packages.url}/-/v2/packages/container/package/${route.repo}/referrers/${truncated}`,
      'content-type': 'text/html; charset=utf-8'
    })
    res.end('<a href="…">See Other</a>.\n')
    return true
  }
  return {
    name: 'ghcr',
    title: 'GitHub Container Registry',
    auth: {
      scheme: 'bearer',
      realmPath: '/token',
      service: 'ghcr.io',
      scopeInChallenge: true,
      tokenFields: ['token']
    },
    defaults: { referrers: 'redirect' },
    rules: [redirect]
  }
}

/**
 * The other host GHCR redirects referrers requests to: every request it gets answers 429
 * (dataaxiom/ghcr-cleanup-action#13). A client that follows the redirect shows up in `hits`.
 */
export async function startGhcrPackagesHost(): Promise<{
  url: string
  hits: string[]
  stop(): Promise<void>
}> {
  const hits: string[] = []
  const server: Server = createServer((req, res) => {
    hits.push(req.url ?? '')
    req.resume()
    res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '60' })
    res.end('Too Many Requests')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    hits,
    stop: () =>
      new Promise((r) => {
        server.closeAllConnections()
        server.close(() => r())
      })
  }
}

/**
 * Docker Hub. The token server is a host of its own (auth.docker.io, registry-1.docker.io's
 * challenge `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",
 * scope=…`: Distribution's token authentication spec,
 * https://distribution.github.io/distribution/spec/auth/token/, and distribution/distribution#1203).
 */
export function dockerhub(): ProfileSpec {
  const remaining = new Map<string, number>()
  // Pull limits: 429 with the JSON TOOMANYREQUESTS error once the pull limit is used up
  // (ScribeMD/docker-cache#829); the overall anti-abuse limit answers 429 with the bare text
  // "Too Many Requests (HAP429)." and Retry-After (docker/hub-feedback#1907, #2023,
  // cmliu/CF-Workers-docker.io#132). Retry-After is 60 there; 0 here, to keep the tests fast.
  const rateLimit: ProfileRule = (req, res, route, ctx) => {
    if (route.kind !== 'manifest' || req.method !== 'GET') return false
    const o = ctx.opts(route.repo)
    if (o.pullLimitReached) {
      req.resume()
      ctx.note({ kind: 'pull-limit', repo: route.repo })
      return ctx.error(
        res,
        429,
        'TOOMANYREQUESTS',
        'You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit'
      )
    }
    if (!o.rateLimitedGets) return false
    ctx.profile.configure(route.repo!, { rateLimitedGets: o.rateLimitedGets - 1 })
    req.resume()
    ctx.note({ kind: 'rate-limited', repo: route.repo })
    res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '0' })
    res.end('Too Many Requests (HAP429).\n')
    return true
  }
  return {
    name: 'dockerhub',
    title: 'Docker Hub',
    auth: {
      scheme: 'bearer',
      realmPath: '/token',
      separateHost: true,
      service: 'registry.docker.io',
      scopeInChallenge: true,
      tokenFields: ['token', 'access_token']
    },
    // No referrers API: docker/roadmap#724 asks for it (open; the tag-schema fallback is what
    // cosign uses there). awslabs/soci-snapshotter#1828 reports that it was added in 2025:
    // option referrers: 'api'.
    defaults: { referrers: 'none' },
    // Manifest GETs and HEADs carry the pull allowance; HEAD does not count against it
    // (https://docs.docker.com/docker-hub/usage/pulls/, docker/docs
    // content/manuals/docker-hub/usage/pulls.md: ratelimit-limit / ratelimit-remaining
    // `N;w=21600`, docker-ratelimit-source).
    headers: (route, req): Record<string, string> => {
      if (route.kind !== 'manifest' || !['GET', 'HEAD'].includes(req.method ?? '')) return {}
      const key = route.repo ?? ''
      const left = remaining.get(key) ?? 100
      if (req.method === 'GET') remaining.set(key, Math.max(0, left - 1))
      return {
        'ratelimit-limit': '100;w=21600',
        'ratelimit-remaining': `${req.method === 'GET' ? Math.max(0, left - 1) : left};w=21600`,
        'docker-ratelimit-source': '203.0.113.7'
      }
    },
    rules: [
      rateLimit,
      // Immutable repositories: a push to an existing tag is denied (docker/hub-feedback#2466;
      // the CLI prints "denied: requested access to the resource is denied - This tag is
      // already assigned to an image in this repository and cannot be updated due to
      // immutability settings", as in sergienko4/israeli-bank-scrapers-to-actual-budget's
      // DOCKER-IMMUTABILITY-FIX.md).
      immutableTags((res, _repo, _tag, ctx) =>
        ctx.error(
          res,
          403,
          'DENIED',
          'requested access to the resource is denied',
          'This tag is already assigned to an image in this repository and cannot be updated due to immutability settings. To push this image, use a different tag.'
        )
      ),
      referrersApi()
    ]
  }
}

/**
 * Amazon ECR. A Basic challenge, not Bearer, `Basic realm="https://<account>.dkr.ecr.<region>.
 * amazonaws.com/",service="ecr.amazonaws.com"`, with the text/plain body "Not Authorized" (a
 * captured exchange in NVIDIA/enroot#59); the password is the token from
 * `aws ecr get-login-password`.
 */
export function ecr(): ProfileSpec {
  const account = '123456789012'
  // A repository must be created before anything is pushed to it:
  // 404 NAME_UNKNOWN "The repository with name '…' does not exist in the registry with id '…'"
  // (actions/starter-workflows#2647, regclient/regclient#869). Repository creation templates
  // can now create one on push ("create on push" in the ECR user guide,
  // https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-creation-templates-create.html);
  // the classic behaviour, with no template, is emulated.
  const missingRepo: ProfileRule = (req, res, route, ctx) => {
    if (!route.repo || ['base', 'other'].includes(route.kind)) return false
    if (ctx.repoExists(route.repo)) return false
    req.resume()
    ctx.note({ kind: 'missing-repo', repo: route.repo })
    return ctx.error(
      res,
      404,
      'NAME_UNKNOWN',
      `The repository with name '${route.repo}' does not exist in the registry with id '${account}'`
    )
  }
  return {
    name: 'ecr',
    title: 'Amazon ECR',
    auth: {
      scheme: 'basic',
      basicChallenge: (origin) => `Basic realm="${origin}/",service="ecr.amazonaws.com"`,
      unauthorizedText: 'Not Authorized\n'
    },
    // Blob mounting is opt-in per registry (the BLOB_MOUNTING account setting:
    // https://docs.aws.amazon.com/AmazonECR/latest/userguide/blob-mounting.html); without it a
    // mount opens an upload session (202). OCI 1.1 referrers API since June 2024
    // (https://aws.amazon.com/about-aws/whats-new/2024/06/amazon-ecr-oci-image-distribution-version-1-1);
    // before that ECR sent OCI-Subject without having the API (sigstore/sigstore-js#1183):
    // option referrers: 'none'.
    defaults: { refuseMounts: true, referrers: 'api' },
    rules: [
      missingRepo,
      // Immutable repositories refuse any PUT to an existing tag, even of the same digest:
      // 400 TAG_INVALID (moby/buildkit#3776, docker/buildx#1660, aws/containers-roadmap#2179).
      immutableTags(
        (res, repo, tag, ctx) =>
          ctx.error(
            res,
            400,
            'TAG_INVALID',
            `The image tag '${tag}' already exists in the '${repo}' repository and cannot be overwritten because the repository is immutable.`
          ),
        true
      ),
      ociSubjectHeader(true),
      referrersApi()
    ]
  }
}

/**
 * Google Artifact Registry. Bearer tokens from /v2/token on the registry's host, as GCR's
 * https://gcr.io/v2/token (the path public clients use; not load-bearing here, as the client
 * follows the realm the challenge names).
 *
 * The OAuth2 POST (refresh-token grant) is not refused by default. GCR answered it with 404
 * (containerd's remotes/docker/authorizer.go: "As of September 2017, GCR is known to return
 * 404", and containerd/containerd#4983); that Artifact Registry does the same is an assumption
 * for which no public source was found, so it is the opt-in RepoOptions.oauthPostStatus: 404.
 */
export function gar(): ProfileSpec {
  return {
    name: 'gar',
    title: 'Google Artifact Registry',
    auth: {
      scheme: 'bearer',
      realmPath: '/v2/token',
      service: 'us-docker.pkg.dev',
      scopeInChallenge: true,
      tokenFields: ['token', 'access_token']
    },
    // Attachments are OCI 1.1 referrers, listed by `oras discover`
    // (https://cloud.google.com/artifact-registry/docs/docker/manage-metadata).
    defaults: { referrers: 'api' },
    // About 21 KB of response headers: past Node's default 16 KiB limit, "Parse Error: Header
    // overflow" (actions/attest-build-provenance#606, fixed by #687 raising it to 32 KB;
    // actions/attest-sbom#201).
    headers: () => largeHeaders(21 * 1024),
    rules: [ociSubjectHeader(), referrersApi()]
  }
}

/**
 * Azure Container Registry. Tokens from /oauth2/token; the answer carries `access_token` only
 * (Azure/acr docs/AAD-OAuth.md: both the GET and the refresh-token POST).
 */
export function acr(): ProfileSpec {
  return {
    name: 'acr',
    title: 'Azure Container Registry',
    auth: {
      scheme: 'bearer',
      realmPath: '/oauth2/token',
      service: 'example.azurecr.io',
      scopeInChallenge: true,
      tokenFields: ['access_token']
    },
    // OCI 1.1 referrers API ("Manage OCI Artifacts and Supply Chain Artifacts with ORAS",
    // https://learn.microsoft.com/en-us/azure/container-registry/container-registry-oras-artifacts;
    // Azure/azure-cli#24976 for its artifact Accept check).
    defaults: { referrers: 'api' },
    rules: [ociSubjectHeader(), referrersApi()]
  }
}
