// The second path: the same manager.wasm the extension runs, loaded in a page
// (globalThis.WSCAManager, docs/browser.md). Storage is an in-memory Map with
// an atomic create (one JavaScript thread: no await between the check and the
// set); the softkey KEK is random per page load.
'use strict';
const pageWallet = (() => {
	const out = document.getElementById('out');
	const log = (x) => (out.textContent = (typeof x === 'string' ? x : JSON.stringify(x, null, 1)) + '\n' + out.textContent);
	const mem = new Map();
	const storage = {
		get: async (k) => (mem.has(k) ? mem.get(k) : null),
		create: async (k, v) => {
			if (mem.has(k)) return false;
			mem.set(k, v);
			return true;
		},
		put: async (k, v) => void mem.set(k, v),
		delete: async (k) => void mem.delete(k),
		list: async (prefix) => [...mem.keys()].filter((k) => k.startsWith(prefix)),
	};
	let loaded = null;
	let loadMs = null;
	const pinRequests = [];

	function load() {
		if (!loaded) {
			loaded = (async () => {
				const t0 = performance.now();
				const ready = new Promise((r) => (globalThis.onWSCAManagerReady = r));
				const go = new Go();
				const { instance } = await WebAssembly.instantiateStreaming(fetch('/dist/manager.wasm'), go.importObject);
				go.run(instance);
				if (!globalThis.WSCAManager) await ready;
				loadMs = performance.now() - t0;
				return loadMs;
			})();
		}
		return loaded;
	}

	async function open(r2ps) {
		await load();
		const plugins = { softkey: {} };
		if (r2ps) plugins.r2ps = { url: r2ps.url, unit: r2ps.unit };
		return WSCAManager.open({
			storage,
			kek: crypto.getRandomValues(new Uint8Array(32)),
			plugins,
			defaults: { global: 'softkey' },
			callbacks: {
				requestPIN: async (req) => {
					pinRequests.push(req);
					return document.getElementById('pin').value || null;
				},
				webauthn: async () => {
					throw new Error('no WebAuthn on this page');
				},
			},
		});
	}

	async function signVerify(m, plugin) {
		const data = crypto.getRandomValues(new Uint8Array(48));
		const g = await m.generate({ plugin });
		const r = await m.sign(g.kid, data);
		await WC.verifySign(g.publicJwk, data, r);
		return { kid: g.kid, plugin: r.plugin, amr: r.amr, publicJwk: g.publicJwk, signed: WC.b64u(data), signature: WC.b64u(r.signature), verified: true };
	}

	async function bench(m, kid, n) {
		const data = crypto.getRandomValues(new Uint8Array(32));
		await m.sign(kid, data);
		const t0 = performance.now();
		for (let i = 0; i < n; i++) await m.sign(kid, data);
		const ms = performance.now() - t0;
		return { n, ms, opsPerSec: (n * 1000) / ms };
	}

	// run: softkey and (given r2ps {url, unit, code}) R2PS, each generate +
	// sign + WebCrypto verify; benchN signatures each when benchN > 0.
	async function run(r2ps, benchN = 0) {
		const res = { loadMs: await load() };
		const m = await open(r2ps);
		try {
			res.version = WSCAManager.version;
			res.softkey = await signVerify(m, 'softkey');
			if (benchN) res.softkey.bench = await bench(m, res.softkey.kid, benchN);
			if (r2ps) {
				await m.enrol('r2ps', r2ps.code);
				res.r2ps = await signVerify(m, 'r2ps');
				if (benchN) res.r2ps.bench = await bench(m, res.r2ps.kid, Math.max(1, Math.floor(benchN / 5)));
			}
			res.pinRequests = pinRequests.map((r) => ({ plugin: r.plugin, reason: r.reason }));
			res.listed = (await m.list()).map((k) => k.kid);
		} finally {
			await m.close();
		}
		log(res);
		return res;
	}

	document.getElementById('run').onclick = () => {
		const v = (id) => document.getElementById(id).value;
		run(v('url') ? { url: v('url'), unit: v('unit'), code: v('code') } : null).catch((e) => log(e.name + ' ' + (e.code || '') + ': ' + e.message));
	};
	return { load, run };
})();
