// The run's cache of manifests and configs: each is fetched once, however many sources, copies
// and attestation rewrites ask for it.
import type { RawManifest } from './core/manifest.js'
import { repoName, type Repository } from './core/reference.js'
import type { RegistryClient } from './registry/client.js'
import { OnceMap } from './util/limiter.js'

/** Caches manifests for the run: the same manifest is never fetched twice. */
export class ManifestStore {
  private readonly manifests = new OnceMap<RawManifest>()
  private readonly configs = new OnceMap<Uint8Array>()

  /** Whether children found in an index from `repo` will be copied, so are worth fetching early. */
  willCopyFrom: (repo: Repository) => boolean = () => false

  constructor(readonly client: RegistryClient) {}

  /**
   * Starts fetching a child manifest that copying will need, while the other sources are still
   * resolving: this takes a round trip off the critical path. Errors surface when it is awaited.
   */
  prefetch(repo: Repository, digest: string): void {
    if (this.willCopyFrom(repo)) this.get(repo, digest).catch(() => undefined)
  }

  get(repo: Repository, reference: string): Promise<RawManifest> {
    // Content-addressed: a digest names the same bytes in any repository we may read it from.
    if (reference.includes(':')) {
      return this.manifests.get(reference, () => this.client.getManifest(repo, reference))
    }
    return this.manifests.get(`${repoName(repo)}:${reference}`, async () => {
      const m = await this.client.getManifest(repo, reference)
      this.manifests.seed(m.digest, m)
      return m
    })
  }

  /** A manifest already fetched (or being fetched) by digest, without fetching it. */
  fetched(digest: string): Promise<RawManifest> | undefined {
    return this.manifests.peek(digest)
  }

  /** A config already fetched (or being fetched) while resolving, for copies to reuse. */
  knownConfig(digest: string): Promise<Uint8Array> | undefined {
    return this.configs.peek(digest)
  }

  config(repo: Repository, digest: string): Promise<Uint8Array> {
    return this.configs.get(digest, () => this.client.getBlob(repo, digest))
  }
}
