// Real JS clients of the Responses API through driftgate: the Node `openai` SDK and the AI SDK.
import OpenAI from "openai";
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const baseURL = process.env.GATEWAY_URL + "/v1";
const model = process.env.MODEL;
const out = {};

const client = new OpenAI({ baseURL, apiKey: "sk-client", maxRetries: 0 });
const done = await client.responses.create({ model, input: "hello from node" });
out.node_text = done.output_text;
const stream = await client.responses.create({ model, input: "stream from node", stream: true });
out.node_events = [];
for await (const ev of stream) out.node_events.push(ev.type);

const provider = createOpenAI({ baseURL, apiKey: "sk-client" });
const gen = await generateText({ model: provider(model), prompt: "hello from the ai sdk" });
out.ai_text = gen.text;
out.ai_usage = gen.usage;
const st = streamText({ model: provider(model), prompt: "streaming from the ai sdk" });
let streamed = "";
for await (const part of st.textStream) streamed += part;
out.ai_stream_text = streamed;
console.log(JSON.stringify(out));
