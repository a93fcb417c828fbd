// Where the tests find Nexus's binaries: an environment variable naming
// one, else the workspace's target directory (debug, then release).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..')

export function binary(name, envVar, build) {
  if (process.env[envVar]) return process.env[envVar]
  for (const profile of ['debug', 'release']) {
    const p = join(root, 'target', profile, name)
    if (existsSync(p)) return p
  }
  throw new Error(`${name} is not built; run \`${build}\` or set ${envVar}`)
}
