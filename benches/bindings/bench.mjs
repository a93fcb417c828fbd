// The Node side of the bindings comparison (scripts/bench-bindings).
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Client } = require(process.env.NEXUS_NODE_MODULE)

const env = JSON.parse(process.env.NEXUS_BENCH_ENV)
const client = new Client({ home: process.env.NEXUS_BENCH_HOME, env })
const calls = Number(process.env.NEXUS_BENCH_CALLS || 200000)
const prompt = 'fix the failing test in the parser module'

for (let i = 0; i < 1000; i++) client.classify(prompt)
let t = process.hrtime.bigint()
for (let i = 0; i < calls; i++) client.classify(prompt)
let ns = Number(process.hrtime.bigint() - t) / calls
console.log(JSON.stringify({ lang: 'node', what: 'classify', ns_per_call: +ns.toFixed(1) }))

t = process.hrtime.bigint()
for (let i = 0; i < calls / 10; i++) client.route(prompt, 'coding')
ns = Number(process.hrtime.bigint() - t) / (calls / 10)
console.log(JSON.stringify({ lang: 'node', what: 'route', ns_per_call: +ns.toFixed(1) }))

const streams = Number(process.env.NEXUS_BENCH_STREAMS || 5)
const text = 'word '.repeat(Number(process.env.NEXUS_BENCH_TEXT_CHARS || 200000) / 5)
const addr = env.ANTHROPIC_BASE_URL.replace(/\/$/, '')
for (let i = 0; i < streams; i++) {
  await fetch(`${addr}/_standin/script`, {
    method: 'POST',
    body: JSON.stringify({ api: 'openai', scripts: [{ burst: text }] }),
  })
  const start = process.hrtime.bigint()
  let events = 0
  let size = 0
  for await (const ev of await client.stream('openai/gpt-4o-mini', 'go')) {
    if (ev.type === 'text') size += ev.text.length
    events++
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9
  console.log(JSON.stringify({ lang: 'node', what: 'stream', run: i, events, text_bytes: size, events_per_sec: Math.round(events / secs) }))
}
