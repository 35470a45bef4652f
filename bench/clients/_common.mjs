// What the node client scripts of the compatibility audit share: the same checks, outcomes and JSON
// report as _common.py (see there for what "refused" means), for clients that run under node.

export const CONFIG = JSON.parse(process.env.CLIENT_COMPAT_CONFIG);
export const { base_url: BASE_URL, key: KEY, providers: PROVIDERS } = CONFIG;
export const PNG_B64 =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
export const PNG_URL = `data:image/png;base64,${PNG_B64}`;
export const WEATHER_PARAMS = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
  additionalProperties: false,
};
export const WEATHER_RESULT = "sunny, 21 C";

export function assert(ok, message) {
  if (!ok) throw new Error(`assertion failed: ${message}`);
}

export function checkToolArgs(name, args) {
  assert(name === "get_weather", `called ${name}`);
  const parsed = typeof args === "string" ? JSON.parse(args) : args;
  assert(parsed && typeof parsed.city === "string", `arguments ${JSON.stringify(parsed)}`);
}

export function checkToolAnswer(provider, text) {
  assert(text, "empty answer after the tool result");
  if (provider !== "local") assert(text.includes(WEATHER_RESULT), `answer ignores the tool result: ${text}`);
}

export function checkPerson(value) {
  const data = typeof value === "string" ? JSON.parse(value) : value;
  assert(data && typeof data.name === "string" && Number.isInteger(data.age), `not a person: ${JSON.stringify(data)}`);
}

export function checkVector(vector) {
  assert(Array.isArray(vector) && vector.length > 0, "no vector");
  assert(vector.every((x) => typeof x === "number"), "vector of non-numbers");
}

export class Matrix {
  constructor(client, version) {
    this.client = client;
    this.version = version;
    this.results = [];
  }

  // fn(provider, models) on every provider; feature names what the provider may refuse with a 400
  async run(check, fn, feature) {
    for (const [provider, models] of Object.entries(PROVIDERS)) {
      const refusal = feature ? (models.refuses || {})[feature] : undefined;
      const started = Date.now();
      let outcome = "pass";
      let detail = "";
      try {
        await fn(provider, models);
        if (refusal) [outcome, detail] = ["fail", `expected a 400 naming '${refusal}', got an answer`];
      } catch (err) {
        const status = err?.status ?? err?.statusCode ?? err?.lastError?.statusCode;
        const text = `${err?.name}: ${err?.message} ${err?.responseBody ?? ""} ${err?.lastError?.responseBody ?? ""}`;
        if (refusal && (status === 400 || text.includes("400")) && text.includes(refusal)) {
          [outcome, detail] = ["refused", text.slice(0, 300)];
        } else {
          [outcome, detail] = ["fail", `${text} (status ${status})`.slice(0, 600)];
          if (process.env.CLIENT_COMPAT_TRACE) console.error(err);
        }
      }
      const seconds = Math.round((Date.now() - started) / 10) / 100;
      this.results.push({ client: this.client, check, provider, outcome, detail, seconds });
      console.error(`${this.client} ${check} ${provider}: ${outcome} ${detail.slice(0, 200)}`);
    }
  }

  // run the checks of `checks` (name -> function) in the order of _common.py's CHECKS, then report
  async runAll(checks) {
    const refusable = { image: "images", logprobs: "logprobs" };
    for (const [check, fn] of Object.entries(checks)) await this.run(check, fn, refusable[check]);
    this.dump();
  }

  dump() {
    console.log(JSON.stringify({ client: this.client, version: this.version, results: this.results }));
  }
}
