// Loads web/dist/manager.wasm in Node and opens managers over an in-memory
// storage: the helpers of the Node tests (run by node_test.go).
import { readFile } from 'node:fs/promises';
import { webcrypto } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
export const dist = process.env.WSCA_WASM_DIST || path.join(here, '..', 'dist');

if (!globalThis.crypto) globalThis.crypto = webcrypto;

// load starts the Go program once and resolves with globalThis.WSCAManager.
export async function load() {
  if (globalThis.WSCAManager) return globalThis.WSCAManager;
  const started = performance.now();
  await import(path.join(dist, 'wasm_exec.js'));
  const go = new globalThis.Go();
  const ready = new Promise((resolve) => { globalThis.onWSCAManagerReady = resolve; });
  const { instance } = await WebAssembly.instantiate(await readFile(path.join(dist, 'manager.wasm')), go.importObject);
  go.run(instance);
  await ready;
  globalThis.WSCAManager.loadMs = performance.now() - started;
  return globalThis.WSCAManager;
}

// memoryStorage is the storage contract over a Map, asynchronous like
// chrome.storage; create is atomic (JavaScript runs it to completion).
export function memoryStorage(map = new Map()) {
  return {
    map,
    async get(k) { return map.has(k) ? map.get(k) : null; },
    async create(k, v) { if (map.has(k)) return false; map.set(k, v); return true; },
    async put(k, v) { map.set(k, v); },
    async delete(k) { map.delete(k); },
    async list(p) { return [...map.keys()].filter((k) => k.startsWith(p)); },
  };
}

export const b64u = {
  enc: (b) => Buffer.from(b).toString('base64url'),
  dec: (s) => new Uint8Array(Buffer.from(s, 'base64url')),
};

// bench runs fn n times in sequence and returns the median and mean time
// of one call and the calls per second (no threshold anywhere: measured).
export async function bench(fn, n) {
  const t = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  const total = performance.now() - start;
  t.sort((a, b) => a - b);
  return { signP50Ms: t[Math.floor(n / 2)], signMeanMs: total / n, signOpsPerSec: (n * 1000) / total };
}
