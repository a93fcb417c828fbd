import type { ChatOptions, Client, ConversationMessage, Reply, ToolCall } from './index'

/** `chatOptions` plus the handlers that run each tool. */
export interface RunToolsOptions extends ChatOptions {
  /** Tool name → what runs it: its string (or the JSON of any other value) is the result. */
  handlers: Record<string, (args: any) => unknown | Promise<unknown>>
  /** At most this many rounds of tool calls (default 8). */
  maxRounds?: number
}

/** What `runTools` gives back. */
export interface ToolRun {
  /** The final answer (no tool calls in it). */
  reply: Reply
  /** The whole conversation: push a new user message and send it again to go on. */
  messages: ConversationMessage[]
  /** Every tool call, in order. */
  calls: ToolCall[]
  /** Model calls made. */
  rounds: number
  /** Dollars in all, when every price was known. */
  cost: number | null
}

export declare function runTools(
  client: Client,
  model: string,
  prompt: string | ConversationMessage[],
  options: RunToolsOptions,
): Promise<ToolRun>

export declare function toolResult(callId: string, content: string, isError?: boolean): ConversationMessage
