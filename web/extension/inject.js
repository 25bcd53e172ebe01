// wallet-companion page script (MAIN world, document_start, before the
// page's own scripts): defines window.WalletCompanion and wraps
// navigator.credentials.get/create for the Digital Credentials API. It holds
// no secret and no authority: the service worker decides everything by the
// page's origin, which the browser gives it.
'use strict';
(() => {
	const FROM_PAGE = 'wallet-companion:page';
	const TO_PAGE = 'wallet-companion:ext';
	const VP_PROTOCOL = 'openid4vp-v1-unsigned';
	const VCI_PROTOCOL = 'openid4vci-v1';
	const post = window.postMessage.bind(window);
	const origin = location.origin;
	const creds = navigator.credentials;
	// The browser's own functions, taken before any page script runs.
	const nativeGet = creds && typeof creds.get === 'function' ? creds.get.bind(creds) : null;
	const nativeCreate = creds && typeof creds.create === 'function' ? creds.create.bind(creds) : null;
	const PKC = typeof PublicKeyCredential === 'function' ? PublicKeyCredential : null;
	const DC = typeof DigitalCredential === 'function' ? DigitalCredential : null;

	function b64u(bytes) {
		let s = '';
		for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
		return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
	}
	function unb64u(s) {
		const b = atob(String(s).replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (String(s).length % 4)) % 4));
		const out = new Uint8Array(b.length);
		for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
		return out;
	}
	function enc(v, d = 0) {
		if (d > 32) throw new TypeError('too deep');
		if (v instanceof ArrayBuffer) return { $b: b64u(new Uint8Array(v)) };
		if (ArrayBuffer.isView(v)) return { $b: b64u(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
		if (Array.isArray(v)) return v.map((x) => enc(x, d + 1));
		if (v && typeof v === 'object') {
			const o = {};
			for (const [k, x] of Object.entries(v)) o[k] = enc(x, d + 1);
			return o;
		}
		return v;
	}
	function dec(v, d = 0) {
		if (d > 32) throw new TypeError('too deep');
		if (Array.isArray(v)) return v.map((x) => dec(x, d + 1));
		if (v && typeof v === 'object') {
			const keys = Object.keys(v);
			if (keys.length === 1 && keys[0] === '$b') return unb64u(v.$b);
			const o = {};
			for (const k of keys) o[k] = dec(v[k], d + 1);
			return o;
		}
		return v;
	}

	class WSCAError extends Error {
		constructor(code, message, plugin) {
			super(message);
			this.name = 'WSCAError';
			this.code = code;
			if (plugin) this.plugin = plugin;
		}
	}
	Object.freeze(WSCAError.prototype);
	function fromWire(e) {
		if (e && e.dom) return new DOMException(String(e.message), String(e.name));
		return new WSCAError(String(e?.code || 'internal'), String(e?.message || 'internal error'), e?.plugin);
	}

	let seq = 0;
	const pending = new Map();
	let pinHandler = null;

	function call(op, ...args) {
		return new Promise((resolve, reject) => {
			const id = ++seq;
			pending.set(id, { resolve, reject });
			try {
				post({ tag: FROM_PAGE, kind: 'call', id, op, args: enc(args) }, origin);
			} catch (e) {
				pending.delete(id);
				reject(new WSCAError('invalid_input', 'arguments cannot be sent: ' + e.message));
			}
		});
	}

	window.addEventListener('message', (ev) => {
		if (ev.source !== window || !ev.data || ev.data.tag !== TO_PAGE) return;
		const m = ev.data;
		if (m.kind === 'result') {
			const p = pending.get(m.id);
			if (!p) return;
			pending.delete(m.id);
			if (m.ok) p.resolve(dec(m.result));
			else p.reject(fromWire(m.error));
		} else if (m.kind === 'cb') {
			answerCallback(m.cb, dec(m.payload)).then(
				(result) => post({ tag: FROM_PAGE, kind: 'cbresult', cbid: m.cbid, ok: true, result: enc(result) }, origin),
				() => post({ tag: FROM_PAGE, kind: 'cbresult', cbid: m.cbid, ok: false }, origin),
			);
		}
	});

	async function answerCallback(cb, payload) {
		if (cb === 'pin') {
			if (!pinHandler) return null;
			const pin = await pinHandler(Object.freeze({ ...payload }));
			return typeof pin === 'string' ? pin : null;
		}
		if (cb === 'webauthn') return runWebAuthn(payload);
		throw new Error('unknown callback');
	}

	// runWebAuthn runs the manager's WebAuthn request (manager.WebAuthnRequest
	// JSON) with the browser's own navigator.credentials in this page and
	// returns WebAuthnCreation / WebAuthnGet JSON (base64url).
	async function runWebAuthn(req) {
		if (!nativeCreate || !nativeGet || !PKC) throw new Error('no WebAuthn here');
		const uv = req.userVerification || 'preferred';
		if (req.create) {
			const json = {
				rp: { id: req.rpId, name: 'wallet-companion' },
				user: { id: req.userId || b64u(crypto.getRandomValues(new Uint8Array(16))), name: req.userName || 'wallet', displayName: req.userName || 'wallet' },
				challenge: req.challenge,
				pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
				authenticatorSelection: { residentKey: 'discouraged', userVerification: uv },
				attestation: 'none',
				timeout: 120000,
			};
			const publicKey = PKC.parseCreationOptionsFromJSON
				? PKC.parseCreationOptionsFromJSON(json)
				: { ...json, user: { ...json.user, id: unb64u(json.user.id) }, challenge: unb64u(json.challenge) };
			const c = await nativeCreate({ publicKey });
			return {
				id: c.id,
				attestationObject: b64u(new Uint8Array(c.response.attestationObject)),
				clientDataJSON: b64u(new Uint8Array(c.response.clientDataJSON)),
			};
		}
		const json = {
			rpId: req.rpId,
			challenge: req.challenge,
			allowCredentials: (req.allowCredentials || []).map((id) => ({ type: 'public-key', id })),
			userVerification: uv,
			timeout: 120000,
		};
		const publicKey = PKC.parseRequestOptionsFromJSON
			? PKC.parseRequestOptionsFromJSON(json)
			: { ...json, challenge: unb64u(json.challenge), allowCredentials: json.allowCredentials.map((c) => ({ type: c.type, id: unb64u(c.id) })) };
		const a = await nativeGet({ publicKey });
		const r = a.response;
		const out = {
			id: a.id,
			authenticatorData: b64u(new Uint8Array(r.authenticatorData)),
			clientDataJSON: b64u(new Uint8Array(r.clientDataJSON)),
			signature: b64u(new Uint8Array(r.signature)),
		};
		if (r.userHandle) out.userHandle = b64u(new Uint8Array(r.userHandle));
		return out;
	}

	const api = {
		version: '0.1.0',
		WSCAError,
		requestAccess: () => call('requestAccess'),
		hasAccess: () => call('hasAccess'),
		onPIN(fn) {
			if (fn !== null && typeof fn !== 'function') throw new TypeError('onPIN takes a function or null');
			pinHandler = fn;
		},
		plugins: () => call('plugins'),
		generate: (opts = {}) => call('generate', opts),
		sign: (kid, data) => call('sign', kid, data),
		signJWS: (kid, header, payload) => call('signJWS', kid, header, payload),
		ecdh: (kid, peerJwk) => call('ecdh', kid, peerJwk),
		list: () => call('list'),
		delete: (kid) => call('delete', kid),
		properties: (kid) => call('properties', kid),
		migrate: (kid, target) => call('migrate', kid, target),
		attestation: (kids, nonce) => call('attestation', kids, nonce),
		enrol: (plugin, code) => call('enrol', plugin, code),
		storeCredential: (c) => call('storeCredential', c),
		listCredentials: () => call('listCredentials'),
		deleteCredential: (id) => call('deleteCredential', id),
	};
	Object.defineProperty(window, 'WalletCompanion', { value: Object.freeze(api), enumerable: true });

	// ---- Digital Credentials API ----
	function requestsOf(options) {
		const r = options && typeof options === 'object' ? options.digital?.requests : null;
		return Array.isArray(r) ? r : null;
	}
	function wants(options, protocol) {
		const r = requestsOf(options);
		return !!r && r.some((q) => q && q.protocol === protocol);
	}
	function plainRequests(options) {
		return { requests: JSON.parse(JSON.stringify(requestsOf(options))) };
	}
	function digitalCredential(c) {
		const o = Object.create(DC ? DC.prototype : Object.prototype);
		const fields = { id: '', type: 'digital', protocol: c.protocol, data: c.data };
		for (const [k, v] of Object.entries(fields)) Object.defineProperty(o, k, { value: v, enumerable: true });
		Object.defineProperty(o, 'toJSON', { value: () => ({ protocol: c.protocol, data: c.data }) });
		return Object.freeze(o);
	}
	function wrap(native, op, protocol) {
		return function (options) {
			// Anything this wallet does not handle goes to the browser, unchanged.
			if (!wants(options, protocol)) return native(options);
			let digital;
			try {
				digital = plainRequests(options);
			} catch {
				return native(options);
			}
			return call(op, digital).then((r) => (r && r.handled ? digitalCredential(r.credential) : native(options)));
		};
	}
	if (creds && nativeGet) {
		Object.defineProperty(creds, 'get', { value: wrap(nativeGet, 'dcGet', VP_PROTOCOL), writable: true, configurable: true });
	}
	if (creds && nativeCreate) {
		Object.defineProperty(creds, 'create', { value: wrap(nativeCreate, 'dcCreate', VCI_PROTOCOL), writable: true, configurable: true });
	}
	if (DC && typeof DC.userAgentAllowsProtocol === 'function') {
		const native = DC.userAgentAllowsProtocol.bind(DC);
		Object.defineProperty(DC, 'userAgentAllowsProtocol', {
			value: (p) => p === VP_PROTOCOL || p === VCI_PROTOCOL || native(p),
			writable: true,
			configurable: true,
		});
	}
})();
