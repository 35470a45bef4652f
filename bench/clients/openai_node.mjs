// The official openai npm package, unchanged, against the service: the same checks as openai_py.py
// (chat, streams, a tool round trip plain and streamed, zod structured output, embeddings with the
// SDK's default base64 encoding, responses plain / streamed / with a tool round trip / parsed, an
// image as a data: URL, logprobs).
import OpenAI from "openai";
import { zodResponseFormat, zodTextFormat } from "openai/helpers/zod";
import { readFileSync } from "node:fs";
import { z } from "zod";
import {
  BASE_URL, KEY, PNG_URL, WEATHER_PARAMS, WEATHER_RESULT, Matrix, assert,
  checkPerson, checkToolAnswer, checkToolArgs, checkVector,
} from "./_common.mjs";

const client = new OpenAI({ baseURL: BASE_URL, apiKey: KEY, maxRetries: 0, timeout: 180_000 });
const TOOL = { type: "function", function: { name: "get_weather", parameters: WEATHER_PARAMS } };
const FLAT_TOOL = { type: "function", name: "get_weather", parameters: WEATHER_PARAMS, strict: true };
const ASK = [{ role: "user", content: "What is the weather in Oslo?" }];
const FORCE = { type: "function", function: { name: "get_weather" } };
const Person = z.object({ name: z.string(), age: z.number().int() });

async function chat(provider, m) {
  const out = await client.chat.completions.create({
    model: m.chat, messages: [{ role: "user", content: "Say hello." }], max_tokens: 16,
  });
  assert(out.choices[0].message.content, "no content");
  assert(["stop", "length"].includes(out.choices[0].finish_reason) && out.usage, "finish/usage");
}

async function chatStream(provider, m) {
  const stream = await client.chat.completions.create({
    model: m.chat, messages: [{ role: "user", content: "Say hello." }], max_tokens: 16,
    stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let usage = null;
  const finishes = [];
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    if (!c.choices.length) continue;
    text += c.choices[0].delta.content ?? "";
    if (c.choices[0].finish_reason) finishes.push(c.choices[0].finish_reason);
  }
  assert(text && finishes.length === 1 && usage, `text ${text} finishes ${finishes}`);
}

async function tools(provider, m) {
  const first = await client.chat.completions.create({ model: m.chat, messages: ASK, tools: [TOOL], tool_choice: FORCE });
  const choice = first.choices[0];
  const call = (choice.message.tool_calls ?? [])[0];
  assert(choice.finish_reason === "tool_calls" && call, `finish ${choice.finish_reason}`);
  checkToolArgs(call.function.name, call.function.arguments);
  const messages = [...ASK, choice.message, { role: "tool", tool_call_id: call.id, content: WEATHER_RESULT }];
  const second = await client.chat.completions.create({ model: m.chat, messages, tools: [TOOL], max_tokens: 40 });
  checkToolAnswer(provider, second.choices[0].message.content);
}

async function toolsStream(provider, m) {
  // the SDK's own stream helper assembles the tool-call deltas into a message
  const runner = client.chat.completions.stream({ model: m.chat, messages: ASK, tools: [TOOL], tool_choice: FORCE });
  const done = await runner.finalChatCompletion();
  const choice = done.choices[0];
  const call = (choice.message.tool_calls ?? [])[0];
  assert(choice.finish_reason === "tool_calls" && call, `finish ${choice.finish_reason}`);
  checkToolArgs(call.function.name, call.function.arguments);
  const messages = [...ASK, choice.message, { role: "tool", tool_call_id: call.id, content: WEATHER_RESULT }];
  const second = client.chat.completions.stream({ model: m.chat, messages, tools: [TOOL], max_tokens: 40 });
  checkToolAnswer(provider, await second.finalContent());
}

async function structured(provider, m) {
  const out = await client.chat.completions.parse({
    model: m.chat, messages: [{ role: "user", content: "Invent a person." }],
    response_format: zodResponseFormat(Person, "person"),
  });
  checkPerson(out.choices[0].message.parsed);
}

async function embeddings(provider, m) {
  const out = await client.embeddings.create({ model: m.embed, input: ["hello world", "goodbye"] });
  assert(out.data.length === 2, "two vectors");
  out.data.forEach((d) => checkVector(d.embedding));
}

async function responses(provider, m) {
  const out = await client.responses.create({ model: m.chat, input: "Say hello.", instructions: "Be brief.", max_output_tokens: 16 });
  assert(out.output_text && out.usage, "no text");
}

// the SDK adds output_text to a whole response it returns, not to the responses inside stream events
const outputText = (response) =>
  response.output.filter((i) => i.type === "message").flatMap((i) => i.content).map((c) => c.text ?? "").join("");

async function responsesStream(provider, m) {
  const stream = await client.responses.create({ model: m.chat, input: "Say hello.", max_output_tokens: 16, stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  const last = events.at(-1);
  const text = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
  assert(events[0].type === "response.created", events[0].type);
  assert(["response.completed", "response.incomplete"].includes(last.type), last.type);
  assert(text && text === outputText(last.response), `streamed ${text}`);
}

async function responsesTools(provider, m) {
  const ask = [{ role: "user", content: "What is the weather in Oslo?" }];
  const first = await client.responses.create({
    model: m.chat, input: ask, tools: [FLAT_TOOL], tool_choice: { type: "function", name: "get_weather" },
  });
  const call = first.output.find((i) => i.type === "function_call");
  assert(call, `no function_call in ${first.output.map((i) => i.type)}`);
  checkToolArgs(call.name, call.arguments);
  const input = [...ask, ...first.output, { type: "function_call_output", call_id: call.call_id, output: WEATHER_RESULT }];
  const stream = await client.responses.create({ model: m.chat, input, tools: [FLAT_TOOL], max_output_tokens: 40, stream: true });
  let last;
  for await (const e of stream) last = e;
  checkToolAnswer(provider, outputText(last.response));
}

async function responsesParse(provider, m) {
  const out = await client.responses.parse({ model: m.chat, input: "Invent a person.", text: { format: zodTextFormat(Person, "person") } });
  checkPerson(out.output_parsed);
}

async function image(provider, m) {
  const out = await client.chat.completions.create({
    model: m.chat, max_tokens: 16,
    messages: [{ role: "user", content: [{ type: "text", text: "What colour is this pixel?" }, { type: "image_url", image_url: { url: PNG_URL } }] }],
  });
  assert(out.choices[0].message.content, "no content");
}

async function logprobs(provider, m) {
  const out = await client.chat.completions.create({
    model: m.chat, messages: [{ role: "user", content: "Say hi." }], logprobs: true, top_logprobs: 2,
  });
  const lp = out.choices[0].logprobs;
  assert(lp?.content?.length && lp.content[0].top_logprobs.length === 2, "no logprobs");
}

async function models(provider, m) {
  const listed = [];
  for await (const model of client.models.list()) listed.push(model.id);
  assert(listed.length, "no models listed");
  const one = await client.models.retrieve(m.chat);
  assert(one.id === m.chat && one.object === "model", JSON.stringify(one));
}

const version = JSON.parse(readFileSync(new URL("./node_modules/openai/package.json", import.meta.url))).version;
const matrix = new Matrix("openai-node", version);
await matrix.runAll({ chat, chat_stream: chatStream, tools, tools_stream: toolsStream, structured, embeddings, responses, responses_stream: responsesStream, responses_tools: responsesTools, responses_parse: responsesParse, image, logprobs, models });
