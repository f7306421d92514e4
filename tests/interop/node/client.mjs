// The official npm `convex` client against a convex_notebook server.
//
//   node client.mjs <scenario> <deploymentUrl> [adminKey]
//
// Prints one JSON line: {"ok": true, ...observations} (or {"ok": false, "error": ...}).
// Values are described with their JS types (bigint, ArrayBuffer, NaN, -0, ...) so that the
// Python test can check that nothing was lost on the way. Plain Node, no TypeScript.
import { ConvexHttpClient, ConvexClient } from "convex/browser";
import { ConvexError } from "convex/values";
import { makeFunctionReference } from "convex/server";

const [scenario, url, adminKey] = process.argv.slice(2);
const q = (name) => makeFunctionReference(name);

// What a received value is, exactly (JSON cannot say bigint, -0, NaN or ArrayBuffer).
function describe(v) {
  if (v === null) return { t: "null" };
  if (typeof v === "bigint") return { t: "bigint", v: v.toString() };
  if (typeof v === "number") {
    if (Number.isNaN(v)) return { t: "number", v: "NaN" };
    if (Object.is(v, -0)) return { t: "number", v: "-0" };
    if (!Number.isFinite(v)) return { t: "number", v: v > 0 ? "Infinity" : "-Infinity" };
    return { t: "number", v };
  }
  if (typeof v === "string" || typeof v === "boolean") return { t: typeof v, v };
  if (v instanceof ArrayBuffer) return { t: "ArrayBuffer", v: Array.from(new Uint8Array(v)) };
  if (Array.isArray(v)) return { t: "array", v: v.map(describe) };
  if (typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v).sort()) out[k] = describe(v[k]);
    return { t: "object", v: out };
  }
  return { t: typeof v, v: String(v) };
}

// The values sent to the server: every type JSON cannot carry by itself.
const SENT = {
  int64: 5n,
  int64_neg: -9007199254740993n,
  int64_max: 9223372036854775807n,
  bytes: new Uint8Array([0, 1, 2, 254, 255]).buffer,
  nan: NaN,
  neg_zero: -0,
  inf: Infinity,
  ninf: -Infinity,
  float: 1.5,
  int_as_float: 3,
  text: "héllo ☃",
  nested: { list: [1n, new Uint8Array([7]).buffer, null, true] },
};

async function errorOf(promise) {
  try {
    await promise;
    return { thrown: false };
  } catch (e) {
    return {
      thrown: true,
      convexError: e instanceof ConvexError,
      data: e instanceof ConvexError ? describe(e.data) : null,
      message: String(e.message).slice(0, 300),
    };
  }
}

function withTimeout(promise, ms, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms)),
  ]);
}

async function httpScenario() {
  const client = new ConvexHttpClient(url, { logger: false });
  const out = {};
  out.sent = await client.mutation(q("values:store"), { value: SENT });
  out.stored = await client.query(q("values:latest"), {});
  out.sample = await client.query(q("values:sample"), {});
  out.id = await client.mutation(q("messages:send"), { author: "js-http", body: "hello" });
  out.list = await client.query(q("messages:list"), {});
  out.action = await client.action(q("actions:hello"), { name: "node" });
  out.convexError = await errorOf(client.mutation(q("errors:convexError"), {}));
  out.plainError = await errorOf(client.query(q("errors:boom"), {}));
  out.unknown = await errorOf(client.query(q("nope:missing"), {}));
  out.internal = await errorOf(client.mutation(q("admin:secret"), {}));
  out.badArgs = await errorOf(client.mutation(q("messages:send"), { author: 1 }));
  // Admin: internal functions through /api/function with `Authorization: Convex <key>`.
  const admin = new ConvexHttpClient(url, { logger: false });
  admin.setAdminAuth(adminKey);
  out.adminSecret = await admin.function(q("admin:secret"), undefined, {});
  const result = {};
  for (const [k, v] of Object.entries(out)) {
    result[k] = k.endsWith("Error") || ["unknown", "internal", "badArgs"].includes(k) ? v : describe(v);
  }
  return result;
}

async function reactiveScenario() {
  const client = new ConvexClient(url, { logger: false });
  const other = new ConvexHttpClient(url, { logger: false });
  const updates = [];
  let resolveSecond;
  const sawOther = new Promise((resolve) => (resolveSecond = resolve));
  const unsubscribe = client.onUpdate(q("messages:list"), {}, (messages) => {
    updates.push(messages.map((m) => m.body));
    if (messages.some((m) => m.body === "from another client")) resolveSecond();
  });
  // Wait for the first result, then write from ANOTHER client (over HTTP).
  await withTimeout(
    new Promise((resolve) => {
      const check = () => (updates.length > 0 ? resolve() : setTimeout(check, 10));
      check();
    }),
    10000,
    "first onUpdate",
  );
  await other.mutation(q("messages:send"), { author: "js-other", body: "from another client" });
  await withTimeout(sawOther, 10000, "onUpdate after another client's mutation");
  // Read your writes: once `await mutation` returns, the subscription already shows it.
  await client.mutation(q("messages:send"), { author: "js-ws", body: "own write" });
  const afterOwn = updates[updates.length - 1];
  const action = await client.action(q("actions:hello"), { name: "ws" });
  const oneShot = await client.query(q("values:sample"), {});
  const convexError = await errorOf(client.mutation(q("errors:convexError"), {}));
  const queryError = await errorOf(client.query(q("errors:boom"), {}));
  const stored = await client.mutation(q("values:store"), { value: SENT });
  // setAuth: the token fetcher's JWT becomes the identity (Authenticate → identity Transition).
  const anonymous = await client.query(q("auth:whoami"), {});
  // A token signed by the provider the server trusts (made by the Python test: CN_TEST_TOKEN).
  const token = process.env.CN_TEST_TOKEN;
  if (!token) throw new Error("CN_TEST_TOKEN is not set");
  const authChanges = [];
  client.setAuth(async () => token, (isAuthenticated) => authChanges.push(isAuthenticated));
  const signedIn = await withTimeout(
    new Promise((resolve) => {
      const stop = client.onUpdate(q("auth:whoami"), {}, (who) => {
        if (who !== null) {
          stop();
          resolve(who);
        }
      });
    }),
    10000,
    "identity after setAuth",
  );
  unsubscribe();
  await client.close();
  return {
    updates,
    afterOwn,
    action: describe(action),
    oneShot: describe(oneShot),
    stored: describe(stored),
    convexError,
    queryError,
    anonymous,
    signedIn,
    authChanges,
  };
}

// A forged token ({"alg":"none"}.{"sub":"admin"}): the server answers AuthError, the client
// gives up on it (onAuthChange(false)) and stays anonymous.
async function forgedAuthScenario() {
  const client = new ConvexClient(url);
  const part = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const forged = `${part({ alg: "none", typ: "JWT" })}.${part({ sub: "admin", iat: now, exp: now + 600 })}.`;
  const authChanges = [];
  let fetches = 0;
  const refused = new Promise((resolve) => {
    client.setAuth(
      async () => {
        fetches += 1;
        return forged;
      },
      (isAuthenticated) => {
        authChanges.push(isAuthenticated);
        if (!isAuthenticated) resolve();
      },
    );
  });
  await withTimeout(refused, 20000, "onAuthChange(false) after a forged token");
  const who = await withTimeout(client.query(q("auth:whoami"), {}), 10000, "whoami after the refusal");
  await client.close();
  return { authChanges, who, fetches };
}

const scenarios = { http: httpScenario, reactive: reactiveScenario, forgedAuth: forgedAuthScenario };

try {
  const result = await scenarios[scenario]();
  console.log(JSON.stringify({ ok: true, ...result }));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack ? e.stack : e) }));
  process.exit(1);
}
