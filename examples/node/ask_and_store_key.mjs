// Store a key in the vault, then ask through the model hierarchy.
//
//   npm install ./bindings/node
//   OPENAI_API_KEY=sk-... node examples/node/ask_and_store_key.mjs "Summarise RFC 9110 in one line"
//
// With no key in the environment it uses the one already in the vault.
// @ts-check
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
/** @type {import('@nexus-sdk/node')} */
const nexus = require(process.env.NEXUS_NODE_MODULE || '@nexus-sdk/node')

const prompt = process.argv.slice(2).join(' ') || 'Write a haiku about type systems'
let client = new nexus.Client()
const key = process.env.OPENAI_API_KEY
if (key) {
  delete process.env.OPENAI_API_KEY
  await client.vault.setKey('openai', key) // kept encrypted; never in config.toml
  client = new nexus.Client() // picks the key up from the vault
}
try {
  const answer = await client.ask(prompt)
  for (const a of answer.attempts) console.error(`[${answer.category}] tier ${a.tier} ${a.model}: ${a.outcome}`)
  console.log(answer.text)
  console.error(`$${answer.totalCost.toFixed(6)} across ${answer.attempts.length} attempt(s)`)
} catch (e) {
  if (nexus.isNexusError(e, 'budget_exceeded')) {
    console.error(`over budget: ${e.message}`)
    process.exit(21)
  }
  if (nexus.isNexusError(e, 'no_acceptable_answer')) {
    for (const a of e.attempts) console.error(`tier ${a.tier} ${a.model}: ${a.outcome} ${a.reason ?? ''}`)
    console.error(`no answer: ${e.message}`)
    process.exit(22)
  }
  if (nexus.isNexusError(e)) {
    console.error(`${e.code}: ${e.message}`)
    process.exit(1)
  }
  throw e
}
