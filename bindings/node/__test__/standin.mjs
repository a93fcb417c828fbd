// Starts `nexus-standin` (every provider's wire format on loopback) for the
// tests, and scripts its next responses.
import { spawn } from 'node:child_process'
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import { binary as binaryOf } from './bin.mjs'

function binary() {
  return binaryOf('nexus-standin', 'NEXUS_STANDIN', 'cargo build -p nexus-testkit --bin nexus-standin')
}

export async function startStandIn() {
  const proc = spawn(binary(), [], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout })
    rl.once('line', resolve)
    proc.once('error', reject)
  })
  const info = JSON.parse(line)
  return {
    env: info.env,
    addr: info.addr,
    async script(api, ...scripts) {
      const r = await fetch(`http://${info.addr}/_standin/script`, {
        method: 'POST',
        body: JSON.stringify({ api, scripts }),
      })
      if (r.status !== 200) throw new Error(await r.text())
    },
    async requestCount() {
      const r = await fetch(`http://${info.addr}/_standin/requests`)
      return (await r.json()).count
    },
    close() {
      proc.stdin.end()
    },
  }
}

export function freshHome(config = '[http]\nmax_retries = 0\n') {
  const home = join(mkdtempSync(join(tmpdir(), 'nexus-node-')), 'nexus')
  mkdirSync(home)
  writeFileSync(join(home, 'config.toml'), config)
  return home
}
