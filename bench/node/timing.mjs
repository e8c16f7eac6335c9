// Shared by the peer scripts: read the inputs P2b wrote, then sign on request. P2b drives each peer
// over stdin/stdout, one JSON object a line, so the engines take turns in small blocks and a change in
// the machine's load falls on all of them alike:
//   {"op": "sign", "mode": "sign", "count": 5}   → {"samples_ms": [...]}   each signature timed alone
//   {"op": "save", "mode": "sign", "path": "…"}  → {"saved": "…"}          the last output, for pdfsig
import { readFile, writeFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

export async function inputs() {
  const { values } = parseArgs({
    options: {
      pdf: { type: "string" },
      p12: { type: "string" },
      password: { type: "string", default: "" },
      png: { type: "string" },
    },
  });
  for (const name of ["pdf", "p12", "png"]) {
    if (!values[name]) throw new Error(`--${name} is required`);
  }
  return {
    pdf: await readFile(values.pdf),
    p12: await readFile(values.p12),
    password: values.password,
    png: await readFile(values.png),
  };
}

async function answer(request, modes, last) {
  const sign = modes[request.mode];
  if (!sign) return { error: `unknown mode ${request.mode}` };
  if (request.op === "sign") {
    const samples = [];
    for (let i = 0; i < request.count; i++) {
      const started = performance.now();
      last[request.mode] = await sign();
      samples.push(performance.now() - started);
    }
    return { samples_ms: samples };
  }
  if (request.op === "save") {
    if (!last[request.mode]) return { error: `nothing signed in mode ${request.mode} yet` };
    await writeFile(request.path, last[request.mode]);
    return { saved: request.path };
  }
  return { error: `unknown op ${request.op}` };
}

// modes: {name: async () => signed bytes}. Answers until stdin closes.
export async function serve(modes) {
  const last = {};
  process.stdout.write(`${JSON.stringify({ ready: Object.keys(modes), node: process.version })}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    let reply;
    try {
      reply = await answer(JSON.parse(line), modes, last);
    } catch (error) {
      reply = { error: String(error?.stack ?? error) };
    }
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  }
}
