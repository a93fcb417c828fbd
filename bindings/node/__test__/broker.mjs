// Starts `nexus-broker` (a real mesh broker, SQLite in a temporary
// directory) on loopback for the tests.
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'

import { binary as binaryOf } from './bin.mjs'

const binary = () => binaryOf('nexus-broker', 'NEXUS_BROKER', 'cargo build -p nexus-broker')

export async function startBroker() {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-broker-'))
  const proc = spawn(binary(), ['serve', '--listen', '127.0.0.1:0', '--db', join(dir, 'broker.db')], {
    stdio: ['ignore', 'pipe', 'ignore'],
  })
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout })
    rl.once('line', resolve)
    proc.once('error', reject)
  })
  const url = line.split(/\s+/).find((w) => w.startsWith('ws://'))
  if (!url) throw new Error(`nexus-broker did not start: ${line}`)
  return { url, close: () => proc.kill() }
}
