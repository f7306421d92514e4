// convex-test side of the convex_notebook benchmark (issue 2, "side by side with convex-test").
//
// Plain Node ESM: no TypeScript, no vite, no codegen. The schema and functions are built
// in this file and handed to convexTest(schema, modules) explicitly. convex-test finds the
// modules root from the key that contains "_generated" (everything before "_generated"
// is the prefix), strips the file extension, and resolves "bench:add" to
// modules["./bench.js"]().add, so the map below needs a "./_generated/api.js" entry (its
// content is never used) next to "./bench.js".
//
// Measures:
//   (i)  sequential insert mutations per second  (await t.mutation(add, doc), one at a time)
//   (ii) latency of a withIndex eq query returning QUERY_HITS of QUERY_DOCS documents
// and prints one JSON object on stdout.
//
// Usage: node convex_test_bench.mjs [--inserts N] [--query-docs N] [--query-hits N]
//                                   [--repeats N] [--warmup N]

import { anyApi, defineSchema, defineTable, mutationGeneric, queryGeneric } from "convex/server";
import { v } from "convex/values";
import { convexTest } from "convex-test";
import { performance } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

function parseArgs(argv) {
  const opts = { inserts: 5000, queryDocs: 10000, queryHits: 100, repeats: 7, warmup: 2, queries: 30 };
  const names = {
    "--inserts": "inserts",
    "--query-docs": "queryDocs",
    "--query-hits": "queryHits",
    "--repeats": "repeats",
    "--warmup": "warmup",
    "--queries": "queries",
  };
  for (let i = 2; i < argv.length; i++) {
    const key = names[argv[i]];
    if (key === undefined) throw new Error(`unknown argument ${argv[i]}`);
    const value = Number(argv[++i]);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`${argv[i - 1]} needs a positive integer`);
    opts[key] = value;
  }
  if (opts.queryHits > opts.queryDocs) throw new Error("--query-hits must be <= --query-docs");
  return opts;
}

const opts = parseArgs(process.argv);

// The same document shape as the Python side (bench/_common.py: make_doc).
function makeDoc(i, k) {
  return { k, n: i, text: `document number ${i}`, tags: ["a", "b", "c"], score: i * 0.5, done: false };
}

const schema = defineSchema({
  docs: defineTable({
    k: v.string(),
    n: v.number(),
    text: v.string(),
    tags: v.array(v.string()),
    score: v.number(),
    done: v.boolean(),
  }).index("by_k", ["k"]),
});

const benchModule = {
  add: mutationGeneric({
    args: {
      k: v.string(),
      n: v.number(),
      text: v.string(),
      tags: v.array(v.string()),
      score: v.number(),
      done: v.boolean(),
    },
    handler: async (ctx, doc) => await ctx.db.insert("docs", doc),
  }),
  byK: queryGeneric({
    args: { k: v.string() },
    handler: async (ctx, { k }) =>
      await ctx.db
        .query("docs")
        .withIndex("by_k", (q) => q.eq("k", k))
        .collect(),
  }),
};

const modules = {
  "./_generated/api.js": () => Promise.resolve({}),
  "./bench.js": () => Promise.resolve(benchModule),
};

const api = anyApi.bench;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// (i) insert mutation rate: a fresh convexTest per repeat, so every repeat starts from an
// empty table (like the Python side's fresh Backend per repeat).
async function measureInserts() {
  const rates = [];
  for (let r = 0; r < opts.warmup + opts.repeats; r++) {
    const t = convexTest(schema, modules);
    // Tiny warm-up inside each instance (module load, first transaction).
    await t.mutation(api.add, makeDoc(-1, "warm"));
    const n = opts.inserts;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      await t.mutation(api.add, makeDoc(i, `k${i % 1000}`));
    }
    const dt = (performance.now() - t0) / 1000;
    if (r >= opts.warmup) rates.push(n / dt);
  }
  return { median: median(rates), all: rates };
}

// (ii) withIndex eq query returning queryHits of queryDocs documents.
async function measureQuery() {
  const t = convexTest(schema, modules);
  const nKeys = Math.floor(opts.queryDocs / opts.queryHits);
  const batch = 1000;
  for (let start = 0; start < opts.queryDocs; start += batch) {
    const end = Math.min(opts.queryDocs, start + batch);
    await t.run(async (ctx) => {
      for (let i = start; i < end; i++) await ctx.db.insert("docs", makeDoc(i, `k${i % nKeys}`));
    });
  }
  // Sanity check: the query returns exactly queryHits documents.
  const probe = await t.query(api.byK, { k: "k0" });
  if (probe.length !== opts.queryHits) {
    throw new Error(`expected ${opts.queryHits} documents, got ${probe.length}`);
  }
  const lat = [];
  const total = opts.warmup + opts.queries;
  for (let r = 0; r < total; r++) {
    const k = `k${(r * 7919) % nKeys}`;
    const t0 = performance.now();
    const rows = await t.query(api.byK, { k });
    const dt = (performance.now() - t0) / 1000;
    if (rows.length !== opts.queryHits) throw new Error(`got ${rows.length} rows`);
    if (r >= opts.warmup) lat.push(dt);
  }
  return { median: median(lat), all: lat };
}

function packageVersion(name) {
  const require = createRequire(import.meta.url);
  try {
    const dir = require.resolve(`${name}/package.json`);
    return JSON.parse(readFileSync(dir, "utf8")).version;
  } catch {
    // Packages whose "exports" hide package.json: read it from node_modules directly.
    const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
    return JSON.parse(readFileSync(url, "utf8")).version;
  }
}

const inserts = await measureInserts();
const query = await measureQuery();

const out = {
  node: process.version,
  convex: packageVersion("convex"),
  convex_test: packageVersion("convex-test"),
  params: opts,
  insert_rate_per_s: inserts.median,
  insert_rates_per_s: inserts.all,
  query_latency_s: query.median,
  query_latencies_s: query.all,
};
process.stdout.write(JSON.stringify(out) + "\n");
