// Compile-time checks of index.d.ts (`npm run typecheck`): the shapes a
// TypeScript user relies on.
import {
  Client,
  isNexusError,
  type AskReply,
  type HistoryEntry,
  type InboxItem,
  type Invitation,
  type MeshPeer,
  type NexusError,
  type Reply,
  type StreamEvent,
} from '../index'

export async function shapes(c: Client): Promise<number> {
  const r: Reply = await c.chat('openai/gpt-4o-mini', 'hi', { maxTokens: 10 })
  const cost: number | undefined = r.cost
  const s = await c.stream('openai/gpt-4o-mini', [{ role: 'user', content: 'hi' }])
  for await (const ev of s) {
    const e: StreamEvent = ev
    if (e.type === 'text') console.log(e.text)
  }
  const a: AskReply = await c.ask('hi', { category: 'daily', validate: ['json'] })
  try {
    await c.vault.set('app/x', 'y')
  } catch (e) {
    if (isNexusError(e, 'rate_limited')) {
      const err: NexusError = e
      return err.retryAfter ?? 0
    }
  }
  return (cost ?? 0) + a.totalCost + c.route('x').estimate
}

export async function meshShapes(c: Client): Promise<string> {
  const mesh = c.meshRouted('in_process')
  const peers: MeshPeer[] = await mesh.peers()
  const id: string = await mesh.send('bob', 'hi')
  for (const item of await mesh.inbox()) {
    const i: InboxItem = item
    if (i.message.type === 'dm') console.log(i.message.from_name, i.message.text)
    if (i.seq !== null) await mesh.markRead([i.seq])
  }
  for await (const item of await mesh.follow()) {
    if (item.message.type === 'notice') break
  }
  const h: HistoryEntry[] = await mesh.history('general', undefined, 10)
  const inv: Invitation = await mesh.invite({ uses: 2 })
  return id + peers.length + h.length + inv.link
}
