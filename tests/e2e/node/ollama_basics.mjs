// The `ollama` npm library against a localoip server, unchanged (OLLAMA_HOST): a list, a chat
// whole and streamed with its reasoning, a tool call (the tool is WEATHER's JSON), a raw
// generate, embed, show, ps and an unknown model; with VISION_MODEL, a chat about the PNG whose
// base64 is IMAGE and the same chat without it. Prints what came back as one JSON line for
// tests/e2e/test_ollama_js.py.
// Usage: OLLAMA_HOST=URL WEATHER=JSON [VISION_MODEL=NAME IMAGE=BASE64] node ollama_basics.mjs
import { Ollama } from 'ollama'

const client = new Ollama({ host: process.env.OLLAMA_HOST })
const ask = [{ role: 'user', content: 'What is the weather in Paris?' }]
const greedy = { temperature: 0 }
const out = {}
out.list = (await client.list()).models.map((m) => m.model).sort()
out.chat = (await client.chat({ model: 'qwen3-thinking', messages: ask, options: greedy })).message
let content = ''
let thinking = ''
for await (const part of await client.chat({
  model: 'qwen3-thinking', messages: ask, stream: true, options: greedy,
})) {
  content += part.message.content
  thinking += part.message.thinking ?? ''
  out.last = part
}
out.streamed = { content, thinking }
const weather = JSON.parse(process.env.WEATHER)
out.calls = (await client.chat({
  model: 'qwen2.5-turns', messages: ask, tools: [weather], options: greedy,
})).message.tool_calls
out.generate = await client.generate({
  model: 'tiny-chat', prompt: 'Once', raw: true, options: { num_predict: 3, temperature: 0 },
})
out.embed = (await client.embed({ model: 'tiny-embed', input: ['a cat', 'a kitten'] })).embeddings
out.show = (await client.show({ model: 'qwen3-thinking' })).capabilities
out.ps = (await client.ps()).models.map((m) => m.model)
try {
  await client.chat({ model: 'nope', messages: ask })
} catch (error) {
  out.error = { name: error.name, status: error.status_code, message: error.error }
}
const vision = process.env.VISION_MODEL
if (vision) {
  const look = async (images) => {
    const turn = { role: 'user', content: 'What is this?', images }
    const answer = await client.chat({ model: vision, messages: [turn], options: greedy })
    return { prompt_eval_count: answer.prompt_eval_count, content: answer.message.content }
  }
  const png = Uint8Array.from(Buffer.from(process.env.IMAGE, 'base64'))
  out.vision = { alone: await look([]), image: await look([png]) }
}
console.log(JSON.stringify(out))
