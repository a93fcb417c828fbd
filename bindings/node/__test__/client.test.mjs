// The Node binding end to end against the provider stand-ins.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createRequire } from 'node:module'

import { freshHome, startStandIn } from './standin.mjs'

const require = createRequire(import.meta.url)
const nexus = require('../index.js')
const { Client, isNexusError } = nexus

let standin
before(async () => {
  standin = await startStandIn()
})
after(() => standin.close())

class MapVault {
  constructor() {
    this.backend = 'map'
    this.data = new Map()
    this.calls = []
  }
  get(name) {
    this.calls.push(`get ${name}`)
    return this.data.get(name) ?? null
  }
  set(name, value) {
    this.calls.push(`set ${name}`)
    this.data.set(name, value)
  }
  delete(name) {
    return this.data.delete(name)
  }
  list(prefix) {
    return [...this.data.keys()].filter((k) => k.startsWith(prefix))
  }
}

const client = (home = freshHome()) => new Client({ home, env: standin.env }, new MapVault())

test('chat returns text, usage, model and cost', async () => {
  const c = client()
  const r = await c.chat('openai/gpt-4o-mini', 'hello from node')
  assert.equal(r.text, 'echo: hello from node')
  assert.equal(r.model, 'gpt-4o-mini')
  assert.equal(r.provider, 'openai')
  assert.ok(r.usage.inputTokens > 0 && r.usage.outputTokens > 0)
  assert.ok(r.cost > 0)
  assert.equal(r.stopReason, 'end_turn')
})

test('chat takes a conversation', async () => {
  const c = client()
  const r = await c.chat(
    'anthropic/claude-haiku-4-5',
    [
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'one' },
      { role: 'assistant', content: 'two' },
      { role: 'user', content: 'three' },
    ],
    { maxTokens: 50 },
  )
  assert.equal(r.text, 'echo: three')
  assert.throws(() => c.chat('openai/gpt-4o-mini', 42), /prompt must be a string/)
  await assert.rejects(c.chat('openai/gpt-4o-mini', [{ role: 'robot', content: 'x' }]), (e) =>
    isNexusError(e, 'invalid_request'),
  )
})

for (const model of ['anthropic/claude-haiku-4-5', 'openai/gpt-4o-mini', 'gemini/gemini-2.5-flash']) {
  test(`stream is an async iterable, then holds the reply (${model})`, async () => {
    const c = client()
    const s = await c.stream(model, 'stream this to me')
    assert.equal(s.reply, null)
    let text = ''
    const kinds = []
    for await (const ev of s) {
      kinds.push(ev.type)
      if (ev.type === 'text') text += ev.text
    }
    assert.equal(text, 'echo: stream this to me')
    assert.ok(kinds.includes('stop'))
    assert.equal(s.reply.text, text)
    assert.ok(s.reply.cost > 0)
  })
}

test('an error mid-stream rejects with a typed error', async () => {
  const c = client()
  await standin.script('openai', { mid_stream_error: 2 })
  const s = await c.stream('openai/gpt-4o-mini', 'a b c d e f')
  const got = []
  await assert.rejects(
    (async () => {
      for await (const ev of s) got.push(ev)
    })(),
    (e) => isNexusError(e) && e.provider === 'openai',
  )
  assert.ok(got.length > 0)
  assert.equal(s.reply, null)
})

test('a rate limit rejects with RateLimitError and retryAfter', async () => {
  const c = client()
  await standin.script('openai', { status: 429, headers: { 'retry-after': '7' } })
  await assert.rejects(c.chat('openai/gpt-4o-mini', 'hi'), (e) => {
    assert.ok(e instanceof Error)
    assert.equal(e.name, 'RateLimitError')
    assert.equal(e.code, 'rate_limited')
    assert.equal(e.retryAfter, 7)
    assert.equal(e.status, 429)
    assert.equal(e.provider, 'openai')
    return true
  })
})

test('error classes', async () => {
  const c = client()
  await standin.script('anthropic', { status: 401 })
  await assert.rejects(c.chat('anthropic/claude-haiku-4-5', 'hi'), (e) => {
    assert.equal(e.name, 'AuthError')
    assert.ok(!e.message.includes('sk-standin-test'))
    return true
  })
  await standin.script('openai', { insufficient_quota: true })
  await assert.rejects(c.chat('openai/gpt-4o-mini', 'hi'), { name: 'QuotaExceededError' })
  await standin.script('openai', { status: 503 })
  await assert.rejects(c.chat('openai/gpt-4o-mini', 'hi'), { name: 'ProviderError', code: 'provider' })
  await assert.rejects(c.chat('nosuch/model', 'hi'), { name: 'ConfigError' })
  assert.throws(() => c.route('x', 'astrology'), { name: 'ConfigError', code: 'config' })
})

test('ask escalates and reports its attempts', async () => {
  const c = client()
  const h = c.setTiers('coding', ['tier1=anthropic/claude-haiku-4-5', 'tier2=gpt-4o-mini', 'tier3=disabled'])
  assert.equal(h.preset, 'custom')
  assert.deepEqual(
    h.categories.coding.map((t) => t.model),
    ['anthropic/claude-haiku-4-5', 'openai/gpt-4o-mini'],
  )
  const route = c.route('write a parser', 'coding')
  assert.equal(route.tier, 1)
  assert.equal(route.model, 'anthropic/claude-haiku-4-5')
  assert.deepEqual(c.classify('[review] please look'), { category: 'review', basis: 'tag' })

  await standin.script('anthropic', { status: 500 })
  const a = await c.ask('write a parser', { category: 'coding' })
  assert.equal(a.text, 'echo: write a parser')
  assert.equal(a.tier, 2)
  assert.equal(a.escalations, 1)
  assert.deepEqual(a.attempts.map((x) => x.outcome), ['error', 'success'])
  assert.equal(a.attempts[0].errorKind, 'server')
  assert.ok(a.totalCost > 0)

  await standin.script('anthropic', { status: 500 })
  await standin.script('openai', { status: 429, headers: { 'retry-after': '3' } })
  await assert.rejects(c.ask('write a parser', { category: 'coding' }), (e) => {
    assert.equal(e.name, 'NoAcceptableAnswer')
    assert.equal(e.attempts.length, 2)
    assert.equal(e.cause.name, 'RateLimitError')
    assert.equal(e.cause.retryAfter, 3)
    return true
  })
  const stats = c.stats()
  assert.equal(stats.categories[0].category, 'coding')
  assert.equal(stats.categories[0].requests, 2)
  assert.ok(c.spentToday() > 0)
})

test('a spent budget sends nothing', async () => {
  const home = freshHome('[http]\nmax_retries = 0\n[policy]\ndaily_budget = 0.0\n')
  const c = client(home)
  c.setTiers('coding', ['tier1=gpt-4o-mini'])
  const before = await standin.requestCount()
  await assert.rejects(c.ask('write a parser', { category: 'coding' }), { name: 'BudgetExceeded' })
  assert.equal(await standin.requestCount(), before)
})

test('presets', () => {
  const home = freshHome()
  const c = client(home)
  const names = c.presets().map((p) => p.name)
  for (const n of ['budget', 'balanced', 'premium', 'speed', 'claude-only']) assert.ok(names.includes(n))
  const h = c.usePreset('budget')
  assert.equal(h.preset, 'budget')
  assert.equal(h.saved, true)
  assert.equal(new Client({ home, env: standin.env }).hierarchy().preset, 'budget')
  assert.throws(() => c.usePreset('nope'), { name: 'ConfigError' })
})

test('a JavaScript vault: round trip, and keys read from it during chat', async () => {
  const vault = new MapVault()
  const env = Object.fromEntries(Object.entries(standin.env).filter(([k]) => !k.endsWith('_API_KEY')))
  const c = new Client({ home: freshHome(), env }, vault)
  const v = c.vault
  assert.equal(v.backend, 'map')
  await v.set('app/token', 't0k3n')
  assert.equal(vault.data.get('app/token'), 't0k3n')
  assert.equal(await v.get('app/token'), 't0k3n')
  assert.equal(await v.get('app/missing'), null)
  await v.setKey('openai', 'sk-standin-test')
  assert.deepEqual(await v.list('provider/'), ['provider/openai/api_key'])
  assert.equal(await v.delete('app/token'), true)
  assert.equal(await v.delete('app/token'), false)
  await assert.rejects(v.set('no-namespace', 'x'), { name: 'ConfigError' })
  // Rust asked the JavaScript vault for the key (from a tokio thread) and used it.
  const r = await c.chat('openai/gpt-4o-mini', 'keyed by javascript')
  assert.equal(r.text, 'echo: keyed by javascript')
  assert.ok(vault.calls.includes('get provider/openai/api_key'))
  // Synchronous calls on the JavaScript thread reach it directly.
  c.setTiers('daily', ['tier1=gpt-4o-mini', 'tier2=disabled', 'tier3=disabled'])
  assert.equal(c.route('hello there', 'daily').tier, 1)
})

test('what a JavaScript vault throws is the cause', async () => {
  class Broken extends MapVault {
    get() {
      throw new RangeError('the keychain is locked')
    }
  }
  const c = new Client({ home: freshHome() }, new Broken())
  await assert.rejects(c.vault.get('app/x'), (e) => {
    assert.equal(e.name, 'VaultError')
    assert.ok(e.cause instanceof RangeError, String(e.cause))
    return true
  })
  // The same when a chat needs a key the vault would hold: a VaultError
  // with the exception as its cause, not an AuthError without one.
  const env = { OPENAI_API_KEY: '', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' }
  const keyless = new Client({ home: freshHome(), env }, new Broken())
  await assert.rejects(keyless.chat('openai/gpt-4o-mini', 'hi'), (e) => {
    assert.equal(e.name, 'VaultError')
    assert.ok(e.cause instanceof RangeError, String(e.cause))
    return true
  })
  assert.throws(() => new Client({ home: freshHome() }, {}), /no `get` method/)
})

test('the configured encrypted file vault', async () => {
  const home = freshHome()
  const env = { NEXUS_VAULT_BACKEND: 'file', NEXUS_VAULT_PASSPHRASE: 'correct horse' }
  await new Client({ home, env }).vault.set('app/k', 'v')
  const again = new Client({ home, env })
  assert.ok(again.vault.backend.startsWith('file'))
  assert.equal(await again.vault.get('app/k'), 'v')
})

test('calls never block the event loop', async () => {
  const c = client()
  await standin.script('openai', { drip_ms: 40 })
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const start = Date.now()
  const s = await c.stream('openai/gpt-4o-mini', 'slow one two three')
  for await (const _ of s) {
  }
  clearInterval(timer)
  const elapsed = Date.now() - start
  assert.ok(ticks >= Math.floor((elapsed / 5) * 0.5), `${ticks} ticks in ${elapsed} ms`)
})
