// `npm run demo`: starts a local Distribution registry, pushes sample per-arch images (one of them
// wrapped in a BuildKit-style attestation index), runs the bundled action as a runner would, and
// prints the digest and the merged index.
import { runAction } from '../__tests__/helpers/action.js'
import { pushAttestationWrapped, pushImage } from '../__tests__/helpers/oci.js'
import { startRegistry } from '../__tests__/helpers/registry.js'
import { skopeoInspectRaw } from '../__tests__/helpers/tools.js'

const reg = await startRegistry()
try {
  console.log(`registry: ${reg.url} (storage ${reg.storageDir})`)
  const amd = await pushAttestationWrapped(reg, 'demo/app-staging', { arch: 'amd64', seed: 'demo' })
  console.log(
    `pushed linux/amd64 wrapped in an attestation index: ${reg.host}/demo/app-staging@${amd.indexDigest}`
  )
  const arm = await pushImage(reg, 'demo/app-staging', {
    arch: 'arm64',
    variant: 'v8',
    seed: 'demo',
    format: 'docker'
  })
  console.log(
    `pushed linux/arm64/v8 (Docker v2 manifest):        ${reg.host}/demo/app-staging@${arm.digest}`
  )
  const arm7 = await pushImage(reg, 'demo/app-staging', {
    arch: 'arm',
    variant: 'v7',
    seed: 'demo'
  })
  console.log(
    `pushed linux/arm/v7 (OCI manifest):                ${reg.host}/demo/app-staging@${arm7.digest}`
  )

  const inputs = {
    tags: `${reg.host}/demo/app:1.0.0\n${reg.host}/demo/app:latest`,
    sources: [amd.indexDigest, arm.digest, arm7.digest].join('\n'),
    'source-repository': `${reg.host}/demo/app-staging`
  }
  console.log('\nrunning: node dist/index.js with')
  for (const [k, v] of Object.entries(inputs))
    console.log(`  INPUT_${k.toUpperCase()}=${JSON.stringify(v)}`)
  const run = await runAction(inputs)
  console.log('\n--- action log ---\n' + run.stdout.trimEnd())
  if (run.code !== 0) throw new Error(`the action failed (exit ${run.code})\n${run.stderr}`)
  console.log('\n--- outputs ---')
  for (const k of ['digest', 'images', 'tags', 'platforms', 'media-type', 'platform-digests']) {
    console.log(`${k}: ${run.outputs[k]}`)
  }
  console.log(`\n--- skopeo inspect --raw docker://${reg.host}/demo/app:1.0.0 ---`)
  console.log(await skopeoInspectRaw(`${reg.host}/demo/app:1.0.0`))
  console.log(`\ndigest: ${run.outputs.digest}`)
} finally {
  await reg.stop()
}
