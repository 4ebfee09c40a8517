// Profiles of the registries people run themselves (or buy as a service built on them): Quay,
// Harbor, JFrog Artifactory, GitLab, Gitea/Forgejo, Sonatype Nexus. Each behaviour is emulated in
// front of the real Distribution registry, with its public source beside it.
import { immutableTags, ociSubjectHeader, referrersApi } from './rules.js'
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  isDigestRef,
  OCI_INDEX,
  OCI_MANIFEST,
  type ProfileRule,
  type ProfileSpec
} from './types.js'

const OCI_TYPES = [OCI_MANIFEST, OCI_INDEX]

/**
 * Quay (quay.io, Red Hat Quay): bearer tokens from /v2/auth (Red Hat Quay API guide, "OCI
 * referrers OAuth access token": a GET to the v2/auth endpoint,
 * https://docs.redhat.com/en/documentation/red_hat_quay/3/html/red_hat_quay_api_guide/oci-referrers-oauth-access-token).
 */
export function quay(): ProfileSpec {
  // Quay validates what is PUT against JSON schemas of its own and answers 400 MANIFEST_INVALID
  // with the schema error in detail.message:
  // - every entry of a list or index needs `platform`: "'platform' is a required property"
  //   (moby/buildkit#1440, #1550; https://issues.redhat.com/browse/PROJQUAY-4803 "Quay rejects
  //   OCI index manifests without values for `platform`");
  // - older versions take only OCI types in an OCI index: "'…docker…v2+json' is not one of
  //   ['application/vnd.oci.image.manifest.v1+json', …]" (openshift/oc-mirror#253), option
  //   ociIndexOciEntriesOnly;
  // - a Docker v2 manifest may only hold Docker layer types (ko-build/ko#660,
  //   containers/image#1270), so attestations (in-toto layers) must travel in OCI manifests.
  const schema: ProfileRule = async (req, res, route, ctx) => {
    if (route.kind !== 'manifest' || req.method !== 'PUT') return false
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim()
    const doc = await ctx.json(req)
    if (!doc) return false
    const refuse = (message: string): true => {
      ctx.note({ kind: 'schema', repo: route.repo, detail: message })
      return ctx.error(res, 400, 'MANIFEST_INVALID', 'manifest invalid', {
        message: `failed to parse manifest: manifest data does not match schema: ${message}`
      })
    }
    if (type === DOCKER_LIST || type === OCI_INDEX) {
      for (const m of doc.manifests ?? []) {
        if (!m.platform) return refuse("'platform' is a required property")
        if (
          type === OCI_INDEX &&
          ctx.opts(route.repo).ociIndexOciEntriesOnly &&
          !OCI_TYPES.includes(m.mediaType ?? '')
        )
          return refuse(`'${m.mediaType}' is not one of ${JSON.stringify(OCI_TYPES)}`)
      }
    }
    if (type === DOCKER_MANIFEST) {
      const allowed = [
        'application/vnd.docker.image.rootfs.diff.tar.gzip',
        'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'
      ]
      for (const l of doc.layers ?? [])
        if (!allowed.includes(l.mediaType ?? ''))
          return refuse(`'${l.mediaType}' is not one of ${JSON.stringify(allowed)}`)
    }
    return false
  }
  return {
    name: 'quay',
    title: 'Quay',
    auth: {
      scheme: 'bearer',
      realmPath: '/v2/auth',
      service: 'quay.io',
      scopeInChallenge: true,
      tokenFields: ['token']
    },
    // OCI 1.1 referrers API on quay.io (https://issues.redhat.com/browse/PROJQUAY-10177: "quay.io
    // fully supports the OCI Referrers API") and in Red Hat Quay with FEATURE_REFERRERS_API (the
    // API guide above); older versions, or the feature off: option 'none'.
    defaults: { referrers: 'api' },
    rules: [schema, ociSubjectHeader(), referrersApi()]
  }
}

/**
 * Harbor 2.x: bearer tokens from /service/token, service harbor-registry
 * (`Bearer realm="https://demo.goharbor.io/service/token",service="harbor-registry"` in
 * goharbor/harbor#12192), challenge with the scope.
 */
export function harbor(): ProfileSpec {
  // A project policy (vulnerability severity, unsigned artifacts) blocks pulls: 412 on GET and
  // HEAD, code PROJECTPOLICYVIOLATION (goharbor/harbor#15885, #19408; the code is in Harbor's
  // src/lib/errors/const.go, raised by its vulnerable and contenttrust middlewares).
  const policy: ProfileRule = (req, res, route, ctx) => {
    if (route.kind !== 'manifest' || !['GET', 'HEAD'].includes(req.method ?? '')) return false
    if (!ctx.opts(route.repo).policyBlocksPulls) return false
    req.resume()
    ctx.note({ kind: 'policy', repo: route.repo, detail: route.ref })
    return ctx.error(
      res,
      412,
      'PROJECTPOLICYVIOLATION',
      `current image with "3 vulnerabilities" cannot be pulled due to configured policy in 'Prevent images with vulnerability severity of "High" or higher from running.' To continue with pull, please contact your project administrator to exempt matched vulnerabilities through configuring the CVE allowlist.`
    )
  }
  // A mount from a source Harbor cannot use is refused with 401, not 202 (goharbor/harbor#17097:
  // `UNAUTHORIZED: project … not found`).
  const mount401: ProfileRule = (req, res, route, ctx) => {
    if (route.kind !== 'upload' || req.method !== 'POST' || !route.query.has('mount')) return false
    if (!ctx.opts(route.repo).refuseMounts) return false
    req.resume()
    const project = (route.query.get('from') ?? '').split('/')[0]
    ctx.note({ kind: 'mount-refused', repo: route.repo })
    return ctx.error(
      res,
      401,
      'UNAUTHORIZED',
      `project ${project} not found: project ${project} not found`
    )
  }
  return {
    name: 'harbor',
    title: 'Harbor',
    auth: {
      scheme: 'bearer',
      realmPath: '/service/token',
      service: 'harbor-registry',
      scopeInChallenge: true,
      tokenFields: ['token', 'access_token']
    },
    // OCI 1.1 referrers API since Harbor 2.8 (goharbor/harbor#17928, target 2.8.0: "Enabling the
    // Referrers API"; https://goharbor.io/blog/harbor-2.8/).
    defaults: { referrers: 'api' },
    rules: [
      policy,
      mount401,
      // A tag immutability rule: 412 PRECONDITION "Failed to process request due to
      // '<repo>:<tag>' configured as immutable." for any push to an existing immutable tag,
      // whatever its digest (goharbor/harbor src/server/middleware/immutable/pushmf.go and
      // error.go; goharbor docs "Tag Immutability Rules").
      immutableTags(
        (res, repo, tag, ctx) =>
          ctx.error(
            res,
            412,
            'PRECONDITION',
            `Failed to process request due to '${repo}:${tag}' configured as immutable.`
          ),
        true
      ),
      ociSubjectHeader(),
      referrersApi()
    ]
  }
}

/**
 * JFrog Artifactory (Docker repositories): bearer tokens from its api/docker/<repo>/v2/token path
 * (the token URL in containerd/cri#610).
 */
export function artifactory(): ProfileSpec {
  // A tag that does not exist answers 403, not 404 (sigstore/cosign#2973, with the body below;
  // google/go-containerregistry#1691 made crane treat it as absent).
  const missingTag: ProfileRule = (req, _res, route, ctx) => {
    if (route.kind !== 'manifest' || !['GET', 'HEAD'].includes(req.method ?? '')) return false
    if (isDigestRef(route.ref)) return false
    ctx.onResponse(req, (r) => {
      if (r.status !== 404) return
      ctx.note({ kind: 'missing-tag-403', repo: route.repo, detail: route.ref })
      r.status = 403
      r.headers = { 'content-type': 'application/json' }
      r.body = Buffer.from(
        JSON.stringify({
          errors: [
            {
              code: 'UNAUTHORIZED',
              message: `The client does not have permission for manifest: Download request for repo:path 'docker-local:${route.repo}/${route.ref}/list.manifest.json' is forbidden for user: 'token:${ctx.profile.user}'.`,
              detail: { manifest: `${route.repo}:${route.ref}` }
            }
          ]
        })
      )
    })
    return false
  }
  return {
    name: 'artifactory',
    title: 'JFrog Artifactory',
    auth: {
      scheme: 'bearer',
      realmPath: '/artifactory/api/docker/docker-local/v2/token',
      service: 'example.jfrog.io',
      scopeInChallenge: true,
      tokenFields: ['token']
    },
    // No cross-repository mount: docker's mount from an Artifactory repository did not succeed
    // and the layer was uploaded (moby/moby#22531, 2016: "I don't think Artifactory supports
    // the cross-repository push feature"); the spec's answer for that is a 202 with an upload
    // session. The referrers API is in Artifactory 7.90.1 and later (JFrog's "Use Referrers REST
    // API to Discover OCI References", https://jfrog.com/help/r/jfrog-artifactory-documentation/use-referrers-rest-api-to-discover-oci-references);
    // the tag fallback is emulated, as before it: option referrers: 'api'.
    defaults: { refuseMounts: true, referrers: 'none', overwriteAnswer: '400' },
    rules: [
      missingTag,
      // Overwriting a tag without delete permission: 403, or 400 MANIFEST_INVALID with detail
      // {"description":"HTTP 403 Forbidden"} (GoogleContainerTools/kaniko#1095,
      // sigstore/cosign#3758; the seed report of this project).
      immutableTags((res, _repo, _tag, ctx) => {
        if (ctx.opts(_repo).overwriteAnswer === '403')
          return ctx.error(
            res,
            403,
            'DENIED',
            'The client does not have permission to push to the repository.'
          )
        return ctx.error(res, 400, 'MANIFEST_INVALID', 'manifest invalid', {
          description: 'HTTP 403 Forbidden'
        })
      }),
      referrersApi()
    ]
  }
}

/**
 * GitLab container registry: bearer tokens from GitLab's /jwt/auth, service container_registry
 * (GitLab's support article "Failed to pull OCI Image from GitLab Container Registry",
 * https://support.gitlab.com/hc/en-us/articles/20331100094364, fetches one that way).
 */
export function gitlab(): ProfileSpec {
  return {
    name: 'gitlab',
    title: 'GitLab',
    auth: {
      scheme: 'bearer',
      realmPath: '/jwt/auth',
      service: 'container_registry',
      scopeInChallenge: true,
      tokenFields: ['token']
    },
    defaults: {
      // No referrers endpoint: the tag fallback (docker/build-push-action#1593,
      // https://github.com/docker/build-push-action/issues/1593).
      referrers: 'none',
      // A manifest whose `subject` is not in the repository yet: 400 MANIFEST_BLOB_UNKNOWN "blob
      // unknown to registry", detail the subject digest (moby/buildkit#7007, #5561;
      // docker/buildx#3991, docker/build-push-action#1593). The rule is rules.ts's
      // subjectOrder, which every profile has, on here by default.
      subjectMustExist: true
    },
    rules: []
  }
}

/** Gitea / Forgejo: bearer tokens from /v2/token, challenge scope "*" (go-gitea/gitea#25846). */
export function gitea(): ProfileSpec {
  const refusals: ProfileRule = async (req, res, route, ctx) => {
    if (route.kind !== 'manifest' || req.method !== 'PUT') return false
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim()
    const o = ctx.opts(route.repo)
    // Some OCI index PUTs answer 404 MANIFEST_UNKNOWN after every child was pushed
    // (go-gitea/gitea#31861, #26839, #37093).
    if (o.refuseOciIndex && type === OCI_INDEX) {
      await ctx.body(req)
      ctx.note({ kind: 'refused-index', repo: route.repo })
      return ctx.error(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown')
    }
    // Manifests that are not images (OCI artifacts: a config that is not an image config)
    // answer 501 "unsupported: Schema version is not supported" (go-gitea/gitea#25846).
    if (o.refuseArtifacts && type === OCI_MANIFEST) {
      const doc = await ctx.json(req)
      const config = doc?.config?.mediaType
      if (config && config !== 'application/vnd.oci.image.config.v1+json') {
        ctx.note({ kind: 'refused-artifact', repo: route.repo })
        return ctx.error(res, 501, 'UNSUPPORTED', 'Schema version is not supported')
      }
    }
    return false
  }
  return {
    name: 'gitea',
    title: 'Gitea / Forgejo',
    auth: {
      scheme: 'bearer',
      realmPath: '/v2/token',
      service: 'container_registry',
      fixedScope: '*',
      tokenFields: ['token']
    },
    defaults: { referrers: 'none' },
    rules: [refusals]
  }
}

/** Sonatype Nexus Repository (Docker hosted): a Basic challenge, spelt BASIC. */
export function nexus(): ProfileSpec {
  const lists: ProfileRule = async (req, res, route, ctx) => {
    if (route.kind !== 'manifest' || req.method !== 'PUT') return false
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim()
    if (type !== DOCKER_LIST && type !== OCI_INDEX) return false
    const doc = await ctx.json(req)
    // A list whose manifests are not all in this repository: a bare 400 (estesp/manifest-tool
    // #190, where the sources were in other repositories; sonatype/nexus-public#1070).
    for (const m of doc?.manifests ?? []) {
      if ((await ctx.headManifest(route.repo!, m.digest ?? '')).status !== 200) {
        ctx.note({ kind: 'refused-list', repo: route.repo, detail: m.digest })
        return ctx.error(res, 400, 'MANIFEST_INVALID', 'manifest invalid')
      }
    }
    // Some manifest list PUTs answer a bare 400 (estesp/manifest-tool#191: Nexus 3.41, a
    // 156-byte JSON body); option refuseLists.
    if (ctx.opts(route.repo).refuseLists && type === DOCKER_LIST) {
      ctx.note({ kind: 'refused-list', repo: route.repo })
      return ctx.error(res, 400, 'MANIFEST_INVALID', 'manifest invalid')
    }
    return false
  }
  return {
    name: 'nexus',
    title: 'Sonatype Nexus',
    auth: {
      scheme: 'basic',
      // Nexus's challenge: `WWW-Authenticate: BASIC realm="Sonatype Nexus Repository Manager"`
      // (sonatype/nexus-public#921; forceBasicAuth is on by default).
      basicChallenge: () => 'BASIC realm="Sonatype Nexus Repository Manager"'
    },
    defaults: { referrers: 'none' },
    rules: [lists]
  }
}
