// The Vercel AI SDK (ai + @ai-sdk/openai), unchanged, against the service: openai.chat() models speak
// chat completions, openai.responses() models the Responses API (the provider's default). Tool checks
// let the SDK run the tool and send its result back itself (stopWhen: two steps).
import { embedMany, generateObject, generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { readFileSync } from "node:fs";
import {
  BASE_URL, KEY, PNG_B64, WEATHER_PARAMS, WEATHER_RESULT, Matrix, assert,
  checkPerson, checkToolAnswer, checkToolArgs, checkVector,
} from "./_common.mjs";

const openai = createOpenAI({ baseURL: BASE_URL, apiKey: KEY });
const PERSON = jsonSchema({
  type: "object",
  properties: { name: { type: "string" }, age: { type: "integer" } },
  required: ["name", "age"],
  additionalProperties: false,
});
const calls = [];
const TOOLS = {
  get_weather: tool({
    description: "Weather for a city",
    inputSchema: jsonSchema(WEATHER_PARAMS),
    execute: async (input) => {
      calls.push(input);
      return WEATHER_RESULT;
    },
  }),
};
// the first step must call the tool; the last step must answer in text (toolChoice "none", as the
// SDK's docs show for forcing a final answer): the tool history then goes with tool_choice "none"
const prepareStep = ({ stepNumber }) =>
  stepNumber === 0 ? { toolChoice: { type: "tool", toolName: "get_weather" } } : { toolChoice: "none" };
const ASK = "What is the weather in Oslo?";
const opts = { maxRetries: 0 };

function checkSteps(provider, steps, text) {
  const call = steps[0].toolCalls[0];
  assert(call, `no tool call in the first step (finish ${steps[0].finishReason})`);
  checkToolArgs(call.toolName, call.input);
  checkToolAnswer(provider, text);
}

async function chat(provider, m) {
  const out = await generateText({ ...opts, model: openai.chat(m.chat), prompt: "Say hello.", maxOutputTokens: 16 });
  assert(out.text && ["stop", "length"].includes(out.finishReason), `finish ${out.finishReason}`);
}

async function chatStream(provider, m) {
  const out = streamText({ ...opts, model: openai.chat(m.chat), prompt: "Say hello.", maxOutputTokens: 16 });
  let text = "";
  for await (const part of out.fullStream) {
    if (part.type === "error") throw part.error;
    if (part.type === "text-delta") text += part.text;
  }
  assert(text && (await out.usage).outputTokens > 0, `text ${text}`);
}

async function tools(provider, m) {
  const out = await generateText({ ...opts, model: openai.chat(m.chat), prompt: ASK, tools: TOOLS, prepareStep, stopWhen: stepCountIs(2), maxOutputTokens: 60 });
  checkSteps(provider, out.steps, out.text);
}

async function toolsStream(provider, m) {
  const out = streamText({ ...opts, model: openai.chat(m.chat), prompt: ASK, tools: TOOLS, prepareStep, stopWhen: stepCountIs(2), maxOutputTokens: 60 });
  for await (const part of out.fullStream) if (part.type === "error") throw part.error;
  checkSteps(provider, await out.steps, await out.text);
}

async function structured(provider, m) {
  const out = await generateObject({ ...opts, model: openai.chat(m.chat), schema: PERSON, prompt: "Invent a person." });
  checkPerson(out.object);
}

async function embeddings(provider, m) {
  const out = await embedMany({ ...opts, model: openai.embedding(m.embed), values: ["hello world", "goodbye"] });
  assert(out.embeddings.length === 2, "two vectors");
  out.embeddings.forEach(checkVector);
}

async function responses(provider, m) {
  const out = await generateText({ ...opts, model: openai.responses(m.chat), system: "Be brief.", prompt: "Say hello.", maxOutputTokens: 16 });
  assert(out.text, "no text");
}

async function responsesStream(provider, m) {
  const out = streamText({ ...opts, model: openai.responses(m.chat), prompt: "Say hello.", maxOutputTokens: 16 });
  let text = "";
  for await (const part of out.fullStream) {
    if (part.type === "error") throw part.error;
    if (part.type === "text-delta") text += part.text;
  }
  assert(text && text === (await out.text), `text ${text}`);
}

async function responsesTools(provider, m) {
  const out = await generateText({ ...opts, model: openai.responses(m.chat), prompt: ASK, tools: TOOLS, prepareStep, stopWhen: stepCountIs(2), maxOutputTokens: 60 });
  checkSteps(provider, out.steps, out.text);
}

async function responsesParse(provider, m) {
  const out = await generateObject({ ...opts, model: openai.responses(m.chat), schema: PERSON, prompt: "Invent a person." });
  checkPerson(out.object);
}

async function image(provider, m) {
  const out = await generateText({
    ...opts, model: openai.chat(m.chat), maxOutputTokens: 16,
    messages: [{ role: "user", content: [{ type: "text", text: "What colour is this pixel?" }, { type: "image", image: Buffer.from(PNG_B64, "base64"), mediaType: "image/png" }] }],
  });
  assert(out.text, "no text");
}

async function logprobs(provider, m) {
  const out = await generateText({ ...opts, model: openai.chat(m.chat), prompt: "Say hi.", providerOptions: { openai: { logprobs: 2 } } });
  const lp = out.providerMetadata?.openai?.logprobs;
  assert(Array.isArray(lp) && lp.length && lp[0].top_logprobs.length === 2, `logprobs ${JSON.stringify(lp)?.slice(0, 100)}`);
}

const pkg = (name) => JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url))).version;
const matrix = new Matrix("vercel-ai", `ai ${pkg("ai")}, @ai-sdk/openai ${pkg("@ai-sdk/openai")}`);
await matrix.runAll({ chat, chat_stream: chatStream, tools, tools_stream: toolsStream, structured, embeddings, responses, responses_stream: responsesStream, responses_tools: responsesTools, responses_parse: responsesParse, image, logprobs });
