// The tool loop for Node, on top of `client.chat`: JavaScript handlers
// (sync or async) run in JavaScript, where they live.
'use strict'

/**
 * A user message carrying a tool's output for the call `callId`.
 * @param {string} callId
 * @param {string} content
 * @param {boolean} [isError]
 * @returns {import('./index').ConversationMessage}
 */
function toolResult(callId, content, isError = false) {
  return { role: 'user', content: [resultPart(callId, content, isError)] }
}

/**
 * @param {string} callId
 * @param {string} content
 * @param {boolean} isError
 * @returns {import('./index').ContentPart}
 */
function resultPart(callId, content, isError) {
  return isError
    ? { type: 'tool_result', call_id: callId, content, is_error: true }
    : { type: 'tool_result', call_id: callId, content }
}

/**
 * Runs a tool loop: sends the conversation, runs `handlers[name](args)` for
 * each call the model makes (its string, or the JSON of anything else, is
 * the result; what it throws goes back as a failed result), and repeats
 * until an answer has no tool calls.
 * @param {import('./index').Client} client
 * @param {string} model
 * @param {string | import('./index').ConversationMessage[]} prompt
 * @param {import('./tools').RunToolsOptions} options
 * @returns {Promise<import('./tools').ToolRun>}
 */
async function runTools(client, model, prompt, options) {
  const { handlers, maxRounds = 8, ...chatOptions } = options
  /** @type {import('./index').ConversationMessage[]} */
  const messages =
    typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : [...prompt]
  /** @type {import('./index').ToolCall[]} */
  const calls = []
  /** @type {number | null} */
  let cost = 0
  for (let rounds = 1; rounds <= maxRounds + 1; rounds++) {
    const reply = await client.chat(model, messages, chatOptions)
    cost = cost === null || reply.cost == null ? null : cost + reply.cost
    messages.push(reply.assistantMessage)
    if (reply.toolCalls.length === 0) {
      return { reply, messages, calls, rounds, cost }
    }
    if (rounds > maxRounds) {
      const e = new Error(
        `the model still called tools after ${maxRounds} round(s); raise the limit or check the tools' answers`,
      )
      e.name = 'NoAcceptableAnswer'
      Object.assign(e, { code: 'no_acceptable_answer' })
      throw e
    }
    /** @type {import('./index').ContentPart[]} */
    const results = []
    for (const call of reply.toolCalls) {
      calls.push(call)
      try {
        const handler = handlers[call.name]
        if (!handler) throw new Error(`there is no handler for the tool \`${call.name}\``)
        const out = await handler(JSON.parse(call.arguments))
        results.push(resultPart(call.id, typeof out === 'string' ? out : JSON.stringify(out), false))
      } catch (e) {
        results.push(resultPart(call.id, `the tool threw ${String(e)}`, true))
      }
    }
    messages.push({ role: 'user', content: results })
  }
  throw new Error('unreachable')
}

module.exports = { runTools, toolResult }
