// Tool calling and structured output through the Node binding, against the
// stand-ins for Anthropic, OpenAI and Gemini.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createRequire } from 'node:module'

import { freshHome, startStandIn } from './standin.mjs'

const require = createRequire(import.meta.url)
const { Client } = require('../index.js')
const { runTools, toolResult } = require('../tools.js')

let standin
before(async () => {
  standin = await startStandIn()
})
after(() => standin.close())

const MODELS = ['anthropic/claude-sonnet-4-5', 'openai/gpt-4o-mini', 'gemini/gemini-2.5-flash']
const WEATHER = {
  name: 'get_weather',
  description: 'The weather in a city',
  inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
}
const PROMPT = 'tool get_weather {"city":"Paris"}'
const client = () => new Client({ home: freshHome(), env: standin.env })

test('runTools runs a tool loop on every dialect, with async handlers', async () => {
  const c = client()
  for (const model of MODELS) {
    const run = await runTools(c, model, PROMPT, {
      tools: [WEATHER],
      handlers: { get_weather: async ({ city }) => `22C in ${city}` },
    })
    assert.equal(run.reply.text, 'the tool said: 22C in Paris', model)
    assert.equal(run.rounds, 2)
    assert.equal(run.calls[0].name, 'get_weather')
    assert.deepEqual(run.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant'])
  }
})

test('a hand-written loop, and a throwing handler', async () => {
  const c = client()
  const reply = await c.chat(MODELS[1], PROMPT, { tools: [WEATHER] })
  assert.equal(reply.stopReason, 'tool_use')
  const call = reply.toolCalls[0]
  assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' })
  const convo = [{ role: 'user', content: PROMPT }, reply.assistantMessage, toolResult(call.id, 'sunny')]
  assert.equal((await c.chat(MODELS[1], convo, { tools: [WEATHER] })).text, 'the tool said: sunny')
  const run = await runTools(c, MODELS[0], PROMPT, {
    tools: [WEATHER],
    handlers: {
      get_weather: () => {
        throw new Error('the weather service is down')
      },
    },
  })
  assert.match(run.reply.text, /the weather service is down/)
})

test('streamed tool calls arrive whole', async () => {
  const c = client()
  for (const model of MODELS) {
    const s = await c.stream(model, PROMPT, { tools: [WEATHER] })
    const types = []
    for await (const ev of s) types.push(ev.type)
    assert.ok(types.includes('tool_call'), `${model}: ${types}`)
    assert.equal(s.reply.toolCalls[0].name, 'get_weather')
  }
})

test('structured output is parsed and checked', async () => {
  const c = client()
  const schema = { type: 'object', properties: { echo: { type: 'string' } }, required: ['echo'] }
  for (const model of MODELS.slice(1)) {
    const r = await c.chat(model, 'shape it', { schema })
    assert.deepEqual(r.json, { echo: 'shape it' }, model)
  }
  await assert.rejects(c.chat(MODELS[0], 'shape it', { schema }), (e) => {
    assert.equal(e.name, 'NoAcceptableAnswer')
    assert.match(e.message, /not in the requested format/)
    return true
  })
})
