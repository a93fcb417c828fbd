// A tool loop: the model may call `get_weather`; this program runs it and
// sends the result back until the model answers.
//
//   npm install ./bindings/node
//   ANTHROPIC_API_KEY=sk-... node examples/node/tool_loop.mjs anthropic/claude-haiku-4-5 \
//       "Should I take an umbrella in Paris today?"
// @ts-check
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const pkg = process.env.NEXUS_NODE_MODULE || '@nexus-sdk/node'
/** @type {import('@nexus-sdk/node')} */
const nexus = require(pkg)
/** @type {import('@nexus-sdk/node/tools.js')} */
const { runTools } = require(`${pkg}/tools.js`)

const [model = '', ...words] = process.argv.slice(2)
const prompt = words.join(' ') || 'Should I take an umbrella in Paris today?'
const weather = {
  name: 'get_weather',
  description: "Today's weather in a city",
  inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}

try {
  const run = await runTools(new nexus.Client(), model, prompt, {
    tools: [weather],
    // A real program would call a weather service here.
    handlers: { get_weather: async ({ city }) => `22C and sunny in ${city}` },
  })
  for (const c of run.calls) console.error(`called ${c.name}(${c.arguments})`)
  console.log(run.reply.text)
} catch (e) {
  console.error(`error: ${e instanceof Error ? e.message : e}`)
  process.exit(1)
}
