// `npm install ./bindings/node`: builds the native addon with cargo when no
// prebuilt one for this platform is present. No npm packages needed.
//
//   NEXUS_NODE_PROFILE=dev npm install ./bindings/node   # a debug build (CI)
'use strict'

const { spawnSync } = require('node:child_process')
const { copyFileSync, existsSync } = require('node:fs')
const { join } = require('node:path')

const here = join(__dirname, '..')
const triple = {
  'linux-x64': 'linux-x64-gnu',
  'linux-arm64': 'linux-arm64-gnu',
  'darwin-x64': 'darwin-x64',
  'darwin-arm64': 'darwin-arm64',
  'win32-x64': 'win32-x64-msvc',
}[`${process.platform}-${process.arch}`]
if (!triple) {
  console.error(`nexus: no build recipe for ${process.platform}-${process.arch}`)
  process.exit(1)
}
const target = join(here, `nexus.${triple}.node`)
if (existsSync(target) && !process.env.NEXUS_NODE_REBUILD) process.exit(0)

const profile = process.env.NEXUS_NODE_PROFILE || 'release'
console.error(`nexus: building the native addon (cargo, profile ${profile}); this takes a few minutes the first time`)
const r = spawnSync('cargo', ['build', '--locked', '-p', 'nexus-node', '--profile', profile], {
  cwd: here,
  stdio: 'inherit',
})
if (r.error) {
  console.error(`nexus: cannot run cargo (${r.error.message}); install Rust from https://rustup.rs and retry`)
  process.exit(1)
}
if (r.status !== 0) process.exit(r.status)

const meta = spawnSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: here, encoding: 'utf8' })
const targetDir = JSON.parse(meta.stdout).target_directory
const dir = profile === 'dev' ? 'debug' : profile
const lib = { darwin: 'libnexus_node.dylib', win32: 'nexus_node.dll' }[process.platform] || 'libnexus_node.so'
copyFileSync(join(targetDir, dir, lib), target)
console.error(`nexus: built ${target}`)
