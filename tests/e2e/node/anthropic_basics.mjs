// The @anthropic-ai/sdk basics against a localoip server, unchanged: a message with a system
// prompt, a stream, a token count, the model list and an unknown model; with VISION_MODEL, a
// question about the PNG whose base64 is IMAGE, and the same question without it. Prints what
// came back as one JSON line for tests/e2e/test_anthropic_clients.py.
// Usage: [VISION_MODEL=NAME IMAGE=BASE64] node anthropic_basics.mjs BASE_URL MODEL
import Anthropic from "@anthropic-ai/sdk";

const [baseURL, model] = process.argv.slice(2);
const client = new Anthropic({ baseURL, apiKey: "x", maxRetries: 0 });
const hi = [{ role: "user", content: "hi" }];
// The SDK's types leave temperature out for Anthropic's newest models; the API takes it.
const greedy = { temperature: 0 };
const out = {};

const reply = await client.messages.create({
  model, max_tokens: 8, messages: hi, system: "Be brief.", ...greedy,
});
out.create = {
  type: reply.type, stop_reason: reply.stop_reason, text: reply.content[0].text,
  usage: reply.usage,
};

const stream = client.messages.stream({ model, max_tokens: 8, messages: hi, ...greedy });
const events = [];
for await (const event of stream) events.push(event.type);
const final = await stream.finalMessage();
out.stream = { events, text: final.content[0].text, stop_reason: final.stop_reason };

const counted = await client.messages.countTokens({ model, messages: hi, system: "Be brief." });
out.count = counted.input_tokens;

out.models = [];
for await (const info of client.models.list()) out.models.push(info.id);

try {
  await client.messages.create({ model: "nope", max_tokens: 2, messages: hi });
} catch (error) {
  out.error = {
    notFound: error instanceof Anthropic.NotFoundError, status: error.status,
    type: error.error?.error?.type,
  };
}
const vision = process.env.VISION_MODEL;
if (vision) {
  const look = async (...images) => {
    const content = [{ type: "text", text: "What is this?" }, ...images];
    const answer = await client.messages.create({
      model: vision, max_tokens: 8, messages: [{ role: "user", content }], ...greedy,
    });
    const usage = answer.usage;
    const prompt = usage.input_tokens + (usage.cache_read_input_tokens ?? 0);
    return { prompt_tokens: prompt, text: answer.content[0].text };
  };
  const source = { type: "base64", media_type: "image/png", data: process.env.IMAGE };
  out.vision = { alone: await look(), image: await look({ type: "image", source }) };
}
console.log(JSON.stringify(out));
