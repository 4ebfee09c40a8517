// Registry profiles: one emulation per registry people push to, each in front of the same real
// Distribution registry (the upstream). See engine.ts for how they work, hosted.ts and
// selfhosted.ts for what each reproduces and where that is documented, rules.ts for what
// several share.
import type { TestRegistry } from '../registry.js'
import { startProfile } from './engine.js'
import { acr, dockerhub, ecr, gar, ghcr, startGhcrPackagesHost } from './hosted.js'
import { artifactory, gitea, gitlab, harbor, nexus, quay } from './selfhosted.js'
import type { ProfileName, RegistryProfile } from './types.js'

export * from './types.js'
export { startProfile } from './engine.js'

export const PROFILE_NAMES: ProfileName[] = [
  'ghcr',
  'dockerhub',
  'ecr',
  'gar',
  'acr',
  'quay',
  'harbor',
  'artifactory',
  'gitlab',
  'gitea',
  'nexus'
]

export interface Profiles {
  byName: Record<ProfileName, RegistryProfile>
  all: RegistryProfile[]
  /** Requests that reached the host GHCR redirects referrers requests to. */
  ghcrPackagesHits: string[]
  stop(): Promise<void>
}

/** Starts every profile (or those named) in front of `upstream`. */
export async function startProfiles(
  upstream: TestRegistry,
  names: ProfileName[] = PROFILE_NAMES
): Promise<Profiles> {
  const packages = await startGhcrPackagesHost()
  const specs = {
    ghcr: () => ghcr(packages),
    dockerhub,
    ecr,
    gar,
    acr,
    quay,
    harbor,
    artifactory,
    gitlab,
    gitea,
    nexus
  }
  const all = await Promise.all(names.map((n) => startProfile(specs[n](), upstream)))
  return {
    byName: Object.fromEntries(all.map((p) => [p.name, p])) as Record<ProfileName, RegistryProfile>,
    all,
    ghcrPackagesHits: packages.hits,
    stop: async () => {
      await Promise.all(all.map((p) => p.stop()))
      await packages.stop()
    }
  }
}
