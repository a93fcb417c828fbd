// The mesh through the Node binding against a real broker on loopback:
// create, invite, join, direct and topic messages, the inbox read and
// marked, a followed inbox, presence, and a mesh error as its class.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createRequire } from 'node:module'

import { startBroker } from './broker.mjs'
import { freshHome } from './standin.mjs'

const require = createRequire(import.meta.url)
const { Client, isNexusError } = require('../index.js')

let broker
before(async () => {
  broker = await startBroker()
})
after(() => broker.close())

class MapVault {
  constructor() {
    this.data = new Map()
  }
  get(name) {
    return this.data.get(name) ?? null
  }
  set(name, value) {
    this.data.set(name, value)
  }
  delete(name) {
    return this.data.delete(name)
  }
  list(prefix) {
    return [...this.data.keys()].filter((k) => k.startsWith(prefix))
  }
}

const peer = () => new Client({ home: freshHome() }, new MapVault()).meshRouted('in_process')
const texts = (items, type) => items.filter((i) => i.message.type === type).map((i) => i.message.text)

test('send, receive, a topic, presence and errors', async () => {
  const owner = peer()
  await owner.create('lab', broker.url, 'owner')
  const [name] = await owner.identity()
  assert.equal(name, 'owner')
  const inv = await owner.invite({ uses: 1 })
  assert.match(inv.link, /^nexus:\/\/join\//)

  const alice = peer()
  assert.equal(await alice.join(inv.link, null, 'alice'), 'lab')
  assert.ok(texts(await owner.inbox(), 'notice').some((t) => t.includes('sent them the mesh key')))
  assert.ok(texts(await alice.inbox(), 'notice').some((t) => t.includes('received the lab key')))
  assert.equal(await alice.hasKey(), true)

  const id = await owner.send('alice', 'hello from node')
  assert.equal(id.length, 32)
  assert.deepEqual(await alice.unread(), { direct: 1 })
  const items = await alice.inbox()
  assert.deepEqual(texts(items, 'dm'), ['hello from node'])
  const dm = items.find((i) => i.message.type === 'dm')
  assert.equal(dm.message.from_name, 'owner')
  await alice.markRead([dm.seq])
  assert.deepEqual(await alice.unread(), {})

  await alice.joinTopic('general')
  assert.deepEqual(await alice.topics(), ['general'])
  await owner.publish('general', 'first post')
  const posts = await alice.inbox()
  assert.deepEqual(texts(posts, 'topic'), ['first post'])
  await alice.markRead(posts.filter((i) => i.seq !== null).map((i) => i.seq))
  const page = await owner.history('general', null, 10)
  assert.deepEqual(page.map((e) => e.message.text), ['first post'])

  await alice.setStatus('reviewing')
  const members = await owner.peers()
  assert.equal(members.find((p) => p.name === 'alice').status, 'reviewing')
  const v = await owner.verify('alice')
  assert.equal(v.safetyNumber.split(/\s+/).length, 12)

  await assert.rejects(owner.send('nobody', 'hi'), (e) => {
    assert.ok(isNexusError(e, 'mesh'), String(e))
    assert.equal(e.name, 'MeshError')
    assert.match(e.message, /no peer/)
    return true
  })
  assert.throws(() => new Client({ home: freshHome() }, new MapVault()).meshRouted('sideways'), /route is/)
})

test('a followed inbox is an async iterable', async () => {
  const owner = peer()
  await owner.create('lab2', broker.url, 'owner')
  const bob = peer()
  await bob.join((await owner.invite()).link, null, 'bob')
  await owner.inbox()
  await bob.inbox()
  const follow = await bob.follow()
  const got = []
  const reading = (async () => {
    for await (const item of follow) {
      if (item.message.type !== 'dm') continue
      got.push(item.message.text)
      await follow.commit()
      if (got.length === 2) break
    }
  })()
  await owner.send('bob', 'one')
  await owner.send('bob', 'two')
  await reading
  assert.deepEqual(got, ['one', 'two'])
  assert.deepEqual(await bob.unread(), {})
})
