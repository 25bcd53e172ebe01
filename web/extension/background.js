// wallet-companion service worker: loads the wsca key manager (manager.wasm,
// web/wasm) and answers the pages' content scripts. See docs/browser.md.
//
// Trust: the origin of a caller is always port.sender.origin (set by the
// browser for the content script's frame), never a value a page sends. An
// origin can do nothing until the user granted it (prompt.html), and it only
// sees and uses the keys it generated (the kid -> origin map below).
'use strict';

importScripts('wasm_exec.js', 'wire.js', 'dcql.js');

const { enc, dec, b64u, unb64u, wscaError, toWire } = self.WCWire;
const { parseSDJWT, requestData, matchQuery } = self.WCDC;

const EXT_ORIGIN = new URL(chrome.runtime.getURL('')).origin;
const K = {
	grants: 'wc:grants', // {origin: true}
	config: 'wc:config', // {r2psURL, r2psUnit, fido2RpId}
	kek: 'wc:kek', // {iv, ct}: the softkey KEK under the IndexedDB wrapping key
	owner: 'wc:owner:', // + kid -> origin (or WALLET for keys the DC API made)
	cred: 'wc:cred:', // + id -> stored credential
};
const M_PREFIX = 'm:'; // the WASM manager's own records
const WALLET = '@wallet'; // owner of keys made for DC API issuance
const PORT_NAME = 'wallet-companion';

// Load and open timings, read by the tests (docs/benchmarks.md).
self.wcStats = { wasmLoadMs: null, openMs: null, opens: 0, fido2: null };

// ---- storage: chrome.storage.local, writes serialised ----
// This worker is the only context that writes these keys (the options page
// writes wc:config only), so one promise chain makes create's
// read-then-write atomic.
let writeChain = Promise.resolve();
function serialWrite(fn) {
	const p = writeChain.then(fn);
	writeChain = p.catch(() => {});
	return p;
}
async function sget(key) {
	const r = await chrome.storage.local.get(key);
	return r[key] ?? null;
}
async function allKeys() {
	if (chrome.storage.local.getKeys) return chrome.storage.local.getKeys();
	return Object.keys(await chrome.storage.local.get(null));
}
const managerStorage = {
	get: (key) => sget(M_PREFIX + key),
	create: (key, value) =>
		serialWrite(async () => {
			const k = M_PREFIX + key;
			const r = await chrome.storage.local.get(k);
			if (k in r) return false;
			await chrome.storage.local.set({ [k]: value });
			return true;
		}),
	put: (key, value) => serialWrite(() => chrome.storage.local.set({ [M_PREFIX + key]: value })),
	delete: (key) => serialWrite(() => chrome.storage.local.remove(M_PREFIX + key)),
	list: async (prefix) => {
		const p = M_PREFIX + prefix;
		return (await allKeys()).filter((k) => k.startsWith(p)).map((k) => k.slice(M_PREFIX.length));
	},
};

// ---- the softkey KEK ----
// 32 random bytes, kept in chrome.storage.local encrypted under a
// non-extractable AES-GCM CryptoKey that lives in this extension's
// IndexedDB. A copy of chrome.storage alone does not open softkey keys; a
// copy of the whole profile does (docs/browser.md).
const KEK_AAD = new TextEncoder().encode('wallet-companion kek v1');
function idbOpen() {
	return new Promise((resolve, reject) => {
		const r = indexedDB.open('wallet-companion', 1);
		r.onupgradeneeded = () => r.result.createObjectStore('keys');
		r.onsuccess = () => resolve(r.result);
		r.onerror = () => reject(r.error);
	});
}
function idbDo(db, mode, fn) {
	return new Promise((resolve, reject) => {
		const tx = db.transaction('keys', mode);
		const req = fn(tx.objectStore('keys'));
		tx.oncomplete = () => resolve(req.result);
		tx.onerror = () => reject(tx.error);
		tx.onabort = () => reject(tx.error);
	});
}
async function loadKEK() {
	const db = await idbOpen();
	try {
		let wrapKey = await idbDo(db, 'readonly', (s) => s.get('kek-wrap'));
		const stored = await sget(K.kek);
		if (!wrapKey) {
			if (stored) throw new Error('the KEK is wrapped under a key this profile no longer has');
			wrapKey = await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
			await idbDo(db, 'readwrite', (s) => s.put(wrapKey, 'kek-wrap'));
		}
		if (stored) {
			const pt = await crypto.subtle.decrypt(
				{ name: 'AES-GCM', iv: unb64u(stored.iv), additionalData: KEK_AAD },
				wrapKey,
				unb64u(stored.ct),
			);
			return new Uint8Array(pt);
		}
		const kek = crypto.getRandomValues(new Uint8Array(32));
		const iv = crypto.getRandomValues(new Uint8Array(12));
		const ct = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: KEK_AAD }, wrapKey, kek);
		await serialWrite(() => chrome.storage.local.set({ [K.kek]: { iv: b64u(iv), ct: b64u(new Uint8Array(ct)) } }));
		return kek;
	} finally {
		db.close();
	}
}

// ---- the WASM manager ----
const wasmLoaded = (async () => {
	const t0 = performance.now();
	const ready = new Promise((resolve) => {
		self.onWSCAManagerReady = resolve;
	});
	const go = new self.Go();
	const { instance } = await WebAssembly.instantiateStreaming(
		fetch(chrome.runtime.getURL('manager.wasm')),
		go.importObject,
	);
	go.run(instance).catch((e) => console.error('wallet-companion: manager.wasm exited', e));
	if (!self.WSCAManager) await ready;
	self.wcStats.wasmLoadMs = performance.now() - t0;
})();
wasmLoaded.catch((e) => console.error('wallet-companion: loading manager.wasm failed', e));

let managerP = null;
function manager() {
	if (!managerP) {
		managerP = openManager();
		managerP.catch((e) => {
			console.error('wallet-companion: opening the manager failed', e);
			managerP = null;
		});
	}
	return managerP;
}

async function openManager() {
	await wasmLoaded;
	const cfg = (await sget(K.config)) || {};
	const kek = await loadKEK();
	const plugins = { softkey: {} };
	if (cfg.r2psURL && cfg.r2psUnit) plugins.r2ps = { url: cfg.r2psURL, unit: cfg.r2psUnit };
	if (cfg.fido2RpId) plugins.fido2 = { rpId: cfg.fido2RpId };
	const config = {
		storage: managerStorage,
		kek,
		plugins,
		defaults: { global: 'softkey' },
		callbacks: { requestPIN, webauthn },
	};
	const t0 = performance.now();
	let m;
	try {
		m = await self.WSCAManager.open(config);
		self.wcStats.fido2 = plugins.fido2 ? 'on' : 'off';
	} catch (e) {
		if (!plugins.fido2) throw e;
		// A manager.wasm built without the FIDO2 plugin: go on without it.
		console.warn('wallet-companion: the manager refused the fido2 plugin; continuing without it', e?.code);
		delete config.plugins.fido2;
		m = await self.WSCAManager.open(config);
		self.wcStats.fido2 = 'unavailable: ' + (e?.code || 'error');
	}
	self.wcStats.openMs = performance.now() - t0;
	self.wcStats.opens++;
	return m;
}
manager(); // load early: the first page call then finds it ready

chrome.storage.onChanged.addListener((changes, area) => {
	if (area !== 'local' || !changes[K.config]) return;
	const old = managerP;
	managerP = null;
	if (old) enqueue(null, async () => (await old).close()).catch(() => {});
});

// Manager calls run one at a time: a PIN or WebAuthn callback then belongs to
// exactly one caller (current), and is asked of that caller only.
let opChain = Promise.resolve();
let current = null;
function enqueue(ctx, fn) {
	const p = opChain.then(async () => {
		current = ctx;
		try {
			return await fn();
		} finally {
			current = null;
		}
	});
	opChain = p.catch(() => {});
	return p;
}

// ---- callbacks from the manager ----
// Manager calls run one at a time, so a page that never answers a callback
// would hold every other site's calls (and the DC API's): it gets
// wcLimits.callbackMs (longer than the 120 s WebAuthn ceremony inject.js
// asks for), then the callback fails as cancelled.
self.wcLimits = { callbackMs: 150000 };
const pendingCB = new Map();
let cbSeq = 0;
function askPort(port, cb, payload) {
	return new Promise((resolve, reject) => {
		const cbid = ++cbSeq;
		const timer = setTimeout(() => {
			const p = pendingCB.get(cbid);
			if (!p) return;
			pendingCB.delete(cbid);
			p.reject(wscaError('auth_cancelled', 'the page did not answer in time'));
		}, self.wcLimits.callbackMs);
		const done = (f) => (v) => {
			clearTimeout(timer);
			f(v);
		};
		pendingCB.set(cbid, { resolve: done(resolve), reject: done(reject), port });
		try {
			port.postMessage({ cb, cbid, payload: enc(payload) });
		} catch {
			pendingCB.delete(cbid);
			clearTimeout(timer);
			reject(wscaError('auth_cancelled', 'the page went away'));
		}
	});
}

async function requestPIN(req) {
	const ctx = current;
	if (!ctx) return null;
	const info = {
		plugin: String(req?.plugin ?? ''),
		displayName: String(req?.displayName ?? ''),
		reason: String(req?.reason ?? ''),
		attempts: Number.isInteger(req?.attempts) ? req.attempts : -1,
	};
	if (ctx.kind === 'page') {
		const pin = await askPort(ctx.port, 'pin', info).catch(() => null);
		return typeof pin === 'string' && pin !== '' ? pin : null;
	}
	// A Digital Credentials API flow: the requesting site must never see the
	// wallet's PIN, so the extension asks in its own window.
	const ans = await prompt({ kind: 'pin', origin: ctx.origin, ...info });
	return ans && typeof ans.pin === 'string' && ans.pin !== '' ? ans.pin : null;
}

async function webauthn(request) {
	const ctx = current;
	if (!ctx || ctx.kind !== 'page') throw wscaError('auth_cancelled', 'no page to run WebAuthn in');
	const req = typeof request === 'string' ? JSON.parse(request) : request;
	return askPort(ctx.port, 'webauthn', req);
}

// ---- prompts (extension windows) ----
const prompts = new Map();
async function prompt(info) {
	const id = crypto.randomUUID();
	const answer = new Promise((resolve) => prompts.set(id, { info, resolve, windowId: null }));
	try {
		const w = await chrome.windows.create({
			url: chrome.runtime.getURL('prompt.html#' + id),
			type: 'popup',
			width: 440,
			height: 380,
		});
		const p = prompts.get(id);
		if (p) p.windowId = w.id;
	} catch (e) {
		console.error('wallet-companion: cannot open a prompt', e);
		settlePrompt(id, null);
	}
	return answer;
}
// askUser is prompt for a question a site's call raises (access, a
// presentation, an offer): a site has at most one waiting at a time, and a
// second request meanwhile fails at once with busy(), so a page cannot
// open window after window (none of these calls needs a user gesture).
const waitingSites = new Set();
async function askUser(origin, info, busy) {
	if (waitingSites.has(origin)) throw busy();
	waitingSites.add(origin);
	try {
		return await prompt(info);
	} finally {
		waitingSites.delete(origin);
	}
}
const dcBusy = () => domError('NotAllowedError', 'A request of this site is already waiting for the user.');
function settlePrompt(id, answer) {
	const p = prompts.get(id);
	if (!p) return false;
	prompts.delete(id);
	p.resolve(answer);
	if (p.windowId != null) chrome.windows.remove(p.windowId).catch(() => {});
	return true;
}
chrome.windows.onRemoved.addListener((windowId) => {
	for (const [id, p] of prompts) if (p.windowId === windowId) settlePrompt(id, null);
});

// Messages from the extension's own pages only (prompt, options).
chrome.runtime.onMessage.addListener((msg, sender, sendResponse) => {
	if (sender.id !== chrome.runtime.id || sender.origin !== EXT_ORIGIN) return false;
	switch (msg?.type) {
		case 'prompt-get':
			sendResponse(prompts.get(msg.id)?.info ?? null);
			return false;
		case 'prompt-answer':
			sendResponse(settlePrompt(msg.id, msg.answer ?? null));
			return false;
		case 'stats':
			manager()
				.then(() => sendResponse({ ...self.wcStats }))
				.catch(() => sendResponse({ ...self.wcStats, error: true }));
			return true;
		case 'grants':
			sget(K.grants).then((g) => sendResponse(Object.keys(g || {})));
			return true;
		case 'revoke':
			serialWrite(async () => {
				const g = (await sget(K.grants)) || {};
				delete g[msg.origin];
				await chrome.storage.local.set({ [K.grants]: g });
			}).then(() => sendResponse(true));
			return true;
	}
	return false;
});

// ---- pages (content scripts) ----
chrome.runtime.onConnect.addListener((port) => {
	const s = port.sender;
	const origin = s?.origin;
	if (port.name !== PORT_NAME || s?.id !== chrome.runtime.id || !s.tab || !origin || origin === 'null' || origin === EXT_ORIGIN) {
		port.disconnect();
		return;
	}
	port.onMessage.addListener((msg) => onPortMessage(port, origin, msg));
	port.onDisconnect.addListener(() => {
		for (const [cbid, p] of pendingCB) {
			if (p.port === port) {
				pendingCB.delete(cbid);
				p.reject(wscaError('auth_cancelled', 'the page went away'));
			}
		}
	});
});

async function onPortMessage(port, origin, msg) {
	if (!msg || typeof msg !== 'object' || msg.ping) return;
	if (msg.cbid) {
		const p = pendingCB.get(msg.cbid);
		if (!p || p.port !== port) return;
		pendingCB.delete(msg.cbid);
		if (msg.ok) p.resolve(dec(msg.result));
		else p.reject(wscaError('auth_cancelled', 'the page refused'));
		return;
	}
	let reply;
	try {
		const args = Array.isArray(msg.args) ? dec(msg.args) : [];
		reply = { id: msg.id, ok: true, result: enc(await dispatch(port, origin, String(msg.op), args)) };
	} catch (e) {
		reply = { id: msg.id, ok: false, error: toWire(e) };
	}
	try {
		port.postMessage(reply);
	} catch {
		// the page went away
	}
}

async function granted(origin) {
	const g = (await sget(K.grants)) || {};
	return g[origin] === true;
}
async function setOwner(kid, origin) {
	await serialWrite(() => chrome.storage.local.set({ [K.owner + kid]: origin }));
}
// own fails with key_not_found, not a permission error, for another
// origin's key: an origin cannot learn which kids exist.
async function own(kid, origin) {
	if (typeof kid !== 'string' || (await sget(K.owner + kid)) !== origin) throw wscaError('key_not_found', 'no such key');
}

const KEY_OPS = new Set(['plugins', 'generate', 'sign', 'signJWS', 'ecdh', 'list', 'delete', 'properties', 'migrate', 'attestation', 'enrol', 'storeCredential', 'listCredentials', 'deleteCredential']);

async function dispatch(port, origin, op, args) {
	const ctx = { kind: 'page', port, origin };
	if (op === 'hasAccess') return granted(origin);
	if (op === 'requestAccess') {
		if (await granted(origin)) return true;
		const ans = await askUser(origin, { kind: 'access', origin }, () => wscaError('busy', 'a request of this site is already waiting for the user'));
		if (!ans?.allow) return false;
		await serialWrite(async () => {
			const g = (await sget(K.grants)) || {};
			g[origin] = true;
			await chrome.storage.local.set({ [K.grants]: g });
		});
		return true;
	}
	if (op === 'dcGet') return dcGet(origin, args[0]);
	if (op === 'dcCreate') return dcCreate(origin, args[0]);
	if (!KEY_OPS.has(op)) throw wscaError('invalid_input', 'unknown operation');
	if (!(await granted(origin))) throw wscaError('permission_denied', 'this site has no access to the wallet; call requestAccess()');
	const m = await manager();
	switch (op) {
		case 'plugins':
			return enqueue(ctx, () => m.plugins());
		case 'generate': {
			const o = args[0] && typeof args[0] === 'object' ? args[0] : {};
			const opts = {};
			for (const f of ['plugin', 'requirement', 'issuer', 'credentialType']) if (o[f] !== undefined) opts[f] = o[f];
			const r = await enqueue(ctx, () => m.generate(opts));
			await setOwner(r.kid, origin);
			return r;
		}
		case 'sign':
			await own(args[0], origin);
			return enqueue(ctx, () => m.sign(args[0], args[1]));
		case 'signJWS':
			await own(args[0], origin);
			return enqueue(ctx, () => m.signJWS(args[0], args[1], args[2]));
		case 'ecdh':
			await own(args[0], origin);
			return enqueue(ctx, () => m.ecdh(args[0], args[1]));
		case 'list': {
			const all = await enqueue(ctx, () => m.list());
			const owners = await chrome.storage.local.get(all.map((k) => K.owner + k.kid));
			return all.filter((k) => owners[K.owner + k.kid] === origin);
		}
		case 'delete': {
			await own(args[0], origin);
			const r = await enqueue(ctx, () => m.delete(args[0]));
			await serialWrite(() => chrome.storage.local.remove(K.owner + args[0]));
			return r;
		}
		case 'properties':
			await own(args[0], origin);
			return enqueue(ctx, () => m.properties(args[0]));
		case 'migrate': {
			await own(args[0], origin);
			const r = await enqueue(ctx, () => m.migrate(args[0], args[1]));
			if (r?.newKid && r.newKid !== args[0]) {
				await setOwner(r.newKid, origin);
				if (r.migrated) await serialWrite(() => chrome.storage.local.remove(K.owner + args[0]));
			}
			return r;
		}
		case 'attestation': {
			const kids = Array.isArray(args[0]) ? args[0] : [];
			for (const kid of kids) await own(kid, origin);
			return enqueue(ctx, () => m.attestation(kids, args[1]));
		}
		case 'enrol':
			return enqueue(ctx, () => m.enrol(args[0], args[1]));
		case 'storeCredential':
			return storeCredential(m, ctx, origin, args[0]);
		case 'listCredentials':
			return (await credentials()).filter((c) => c.origin === origin).map(({ id, vct, kid, format }) => ({ id, vct, kid, format }));
		case 'deleteCredential': {
			const c = await sget(K.cred + args[0]);
			if (!c || c.origin !== origin) throw wscaError('key_not_found', 'no such credential');
			await serialWrite(() => chrome.storage.local.remove(K.cred + args[0]));
			return {};
		}
	}
	throw wscaError('invalid_input', 'unknown operation');
}

// ---- credentials (SD-JWT VC) ----
async function credentials() {
	const keys = (await allKeys()).filter((k) => k.startsWith(K.cred));
	const r = await chrome.storage.local.get(keys);
	return keys.map((k) => r[k]).filter(Boolean);
}

async function storeCredential(m, ctx, origin, o) {
	if (!o || typeof o !== 'object') throw wscaError('invalid_input', 'no credential');
	await own(o.kid, origin);
	const sd = parseSDJWT(o.credential);
	const cnf = sd.payload.cnf?.jwk;
	const keys = await enqueue(ctx, () => m.list());
	const key = keys.find((k) => k.kid === o.kid);
	if (!key || !cnf || cnf.x !== key.publicJwk?.x || cnf.y !== key.publicJwk?.y) {
		throw wscaError('invalid_input', 'the credential is not bound to that key');
	}
	if (typeof sd.payload.vct !== 'string') throw wscaError('invalid_input', 'the credential has no vct');
	const id = crypto.randomUUID();
	const rec = { id, origin, kid: o.kid, format: 'dc+sd-jwt', vct: sd.payload.vct, credential: o.credential };
	await serialWrite(() => chrome.storage.local.set({ [K.cred + id]: rec }));
	return { id };
}

// ---- Digital Credentials API ----
const VP_PROTOCOL = 'openid4vp-v1-unsigned';
const VCI_PROTOCOL = 'openid4vci-v1';

async function dcGet(origin, digital) {
	const requests = Array.isArray(digital?.requests) ? digital.requests : [];
	const creds = await credentials();
	for (const req of requests) {
		if (req?.protocol !== VP_PROTOCOL) continue;
		const data = requestData(req);
		const nonce = data?.nonce;
		const queries = data?.dcql_query?.credentials;
		if (typeof nonce !== 'string' || nonce === '' || !Array.isArray(queries)) continue;
		let match = null;
		for (const cq of queries) if ((match = matchQuery(cq, creds))) break;
		if (!match) continue;
		const ans = await askUser(origin, { kind: 'present', origin, vct: match.cred.vct, claims: match.claims }, dcBusy);
		if (!ans?.allow) throw domError('NotAllowedError', 'The user declined to share a credential.');
		const m = await manager();
		const presented = match.sd.jwt + '~' + match.disclose.map((d) => d.raw + '~').join('');
		const sdHash = b64u(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(presented))));
		// Unsigned requests over the DC API: the audience is the caller's
		// origin as the browser names it (OpenID4VP 1.0 Appendix A).
		const kb = await enqueue({ kind: 'dc', origin }, () =>
			m.signJWS(
				match.cred.kid,
				{ typ: 'kb+jwt', alg: 'ES256' },
				{ nonce, aud: 'origin:' + origin, iat: Math.floor(Date.now() / 1000), sd_hash: sdHash },
			),
		);
		return { handled: true, credential: { protocol: VP_PROTOCOL, data: { vp_token: { [match.queryId]: [presented + kb] } } } };
	}
	return { handled: false };
}

async function dcCreate(origin, digital) {
	const requests = Array.isArray(digital?.requests) ? digital.requests : [];
	for (const req of requests) {
		if (req?.protocol !== VCI_PROTOCOL) continue;
		const data = requestData(req);
		const offer = data?.credential_offer && typeof data.credential_offer === 'object' ? data.credential_offer : data;
		const issuer = offer?.credential_issuer;
		const nonce = data?.nonce ?? data?.c_nonce;
		const ids = Array.isArray(offer?.credential_configuration_ids) ? offer.credential_configuration_ids.filter((x) => typeof x === 'string') : [];
		if (typeof issuer !== 'string' || !/^https?:\/\//.test(issuer) || typeof nonce !== 'string' || nonce === '' || ids.length === 0) continue;
		const ans = await askUser(origin, { kind: 'issue', origin, issuer, configurations: ids }, dcBusy);
		if (!ans?.allow) throw domError('NotAllowedError', 'The user declined the credential offer.');
		const m = await manager();
		const proof = await enqueue({ kind: 'dc', origin }, async () => {
			const g = await m.generate({ issuer, credentialType: ids[0] });
			await setOwner(g.kid, WALLET);
			const jwt = await m.signJWS(
				g.kid,
				{ typ: 'openid4vci-proof+jwt', alg: 'ES256', jwk: g.publicJwk },
				{ aud: issuer, nonce, iat: Math.floor(Date.now() / 1000) },
			);
			return { jwt, plugin: g.plugin };
		});
		return { handled: true, credential: { protocol: VCI_PROTOCOL, data: { proofs: { jwt: [proof.jwt] } } } };
	}
	return { handled: false };
}

function domError(name, message) {
	const e = new Error(message);
	e.name = name;
	e.dom = true;
	return e;
}
