// Tutorial 05: the official npm `convex` client talking to the notebook's server.
//
//   node chat.mjs http://127.0.0.1:PORT
//
// Subscribes to messages:list over Convex's WebSocket sync protocol (as `useQuery` does in a
// React app), prints the first result it receives, and closes.
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";

const url = process.argv[2];
if (!url) {
  console.error("usage: node chat.mjs http://127.0.0.1:PORT");
  process.exit(2);
}
const client = new ConvexClient(url, { logger: false });
const list = makeFunctionReference("messages:list");
const messages = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`no answer from ${url} within 30 s`)), 30_000);
  const unsubscribe = client.onUpdate(list, {}, (result) => {
    clearTimeout(timer);
    unsubscribe();
    resolve(result);
  });
});
console.log(`the JS client sees ${messages.length} messages:`);
for (const m of messages) console.log(`  ${m.author}: ${m.body}`);
await client.close();
