// A Nexus extension in Node: upper-cases text; `shout.clipboard` asks the
// host for the clipboard permission first (the user approves at run time).
//
//   nexus ext install --allow-unsigned examples/extensions/shout
//   nexus ext call shout shout '{"text": "quiet please"}'
//
// One JSON-RPC 2.0 message per line on stdin and stdout; see docs/EXTENSIONS.md.
'use strict'
const readline = require('node:readline')

let nextId = 0
const waiting = new Map()
const send = (msg) => process.stdout.write(JSON.stringify(msg) + '\n')

// Calls the host; the answer arrives on stdin like everything else.
const host = (method, params) =>
  new Promise((resolve, reject) => {
    const id = ++nextId
    waiting.set(id, { resolve, reject })
    send({ jsonrpc: '2.0', id, method, params })
  })

const methods = {
  initialize: async () => ({ name: 'shout' }),
  shutdown: async () => null,
  shout: async ({ text }) => String(text).toUpperCase(),
  'shout.permission': async () => host('nexus/permission.request', { permission: 'clipboard:read', reason: 'to shout what you copied' }),
}

const input = readline.createInterface({ input: process.stdin })
input.on('line', async (line) => {
  let msg
  try {
    msg = JSON.parse(line)
  } catch {
    return
  }
  if (msg.method === undefined) {
    // An answer to one of our calls.
    const w = waiting.get(msg.id)
    waiting.delete(msg.id)
    if (w) msg.error ? w.reject(new Error(msg.error.message)) : w.resolve(msg.result)
    return
  }
  if (msg.id === undefined) return // a notification
  const f = methods[msg.method]
  if (!f) return send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: 'no such method' } })
  try {
    send({ jsonrpc: '2.0', id: msg.id, result: await f(msg.params ?? {}) })
  } catch (e) {
    send({ jsonrpc: '2.0', id: msg.id, error: { code: -32603, message: String(e.message || e) } })
  }
})
input.on('close', () => process.exit(0))
