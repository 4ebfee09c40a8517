// What `multiarch-merge --help` prints. Every action input is listed (a unit test checks it).

export const USAGE = `Usage:
  multiarch-merge -t TAG [-t TAG ...] [OPTIONS] SOURCE...
  multiarch-merge --plan FILE [OPTIONS]

Merges per-architecture images into one multi-arch index and pushes it under every tag,
over the registry API (no docker daemon). SOURCE is repo@sha256:..., repo:tag, or a bare
sha256:... digest (looked up in --source-repository, else in the first tag's repository).

Every input of the GitHub Action is an option of the same name; an input may also come from
the environment as MULTIARCH_MERGE_<NAME> (MULTIARCH_MERGE_DRY_RUN=true), which an option
overrides. Options that take a list may be given more than once.

Images:
  -t, --tags TAG               a tag to push the index to (repeatable)
  --sources REF                a source, as well as the positional ones (repeatable)
  --digests-dir DIR            a folder of files named by digest, each a source
  --source-repository REPO     where bare digests are looked up
  --metadata-json JSON         docker/metadata-action's json output, for the tags
  --plan FILE                  a release plan (YAML or JSON; - for stdin): several images,
                               all or nothing; no -t or sources then

The index:
  --format auto|oci|docker     index media type (default auto)
  --attestations MODE          keep, strip, strip-provenance, referrers or
                               referrers-strip-provenance (default keep)
  --platforms LIST             only these platforms (e.g. linux/amd64,linux/arm64)
  --on-duplicate MODE          error, first or last, for two images of one platform
  --annotations KEY=VALUE      an annotation (repeatable; index:, manifest-descriptor: and
                               manifest-descriptor[linux/arm64]: prefixes as docker/metadata-action)
  --github-annotations         add source and revision annotations from GITHUB_* variables
  --require-platforms LIST     fail unless these platforms are all there
  --allow-extra-platforms      with --require-platforms, allow others too
  --append                     add to what the first tag holds instead of replacing it
  --preserve-digest            promote one source index to every tag byte for byte
  --copy-referrers             copy signatures and other referrers of the images too

Tags:
  --on-conflict fail|skip|warn what to do when a registry refuses to move a tag
  --dry-run                    plan and print, write nothing

Registries:
  --username USER              username for the tags' registries
  --password PASS              its password (seen by other users of this machine: prefer
                               --password-stdin or MULTIARCH_MERGE_PASSWORD)
  --password-stdin             read the password from stdin
  --registry-auth REG=USER:PASS  credentials for one more registry (repeatable; prefer
                               --registry-auth-stdin or MULTIARCH_MERGE_REGISTRY_AUTH)
  --registry-auth-stdin        read registry-auth lines from stdin
  --github-token TOKEN         token for ghcr.io when no other credential is known
                               (prefer MULTIARCH_MERGE_GITHUB_TOKEN)
  --insecure-registries LIST   hosts whose TLS certificate is not verified
  --max-concurrency N          requests in flight at once (default 32)
  --retries N                  retries of a failed request (default 10)
  --timeout SECONDS            the whole run's time budget (default 900)
  Credentials also come from the docker config (DOCKER_CONFIG, ~/.docker/config.json).

Output:
  --json                       print one JSON object on stdout: the action's outputs
                               (with --plan: {"results": [one object per image]})
  --verbose                    every log line on stderr, not only phases and warnings
  -h, --help                   this text
  --version                    the version

Without --json, stdout gets the index digest (with --plan, one line per image).
Exit status: 0 merged, 1 the merge failed (nothing half-pushed), 2 the command line or an
input is wrong (nothing was asked of any registry).
`
