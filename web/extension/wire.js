// The wire form of values between the pages, the content script and the
// service worker: extension messaging is JSON, so bytes travel as
// {"$b": base64url}. Errors travel as {name, code, message, plugin}.
'use strict';
(() => {
	function b64u(bytes) {
		let s = '';
		for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
		return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
	}
	function unb64u(s) {
		if (typeof s !== 'string' || !/^[A-Za-z0-9_-]*$/.test(s)) throw new TypeError('not base64url');
		const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
		const out = new Uint8Array(b.length);
		for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
		return out;
	}
	function enc(v, depth = 0) {
		if (depth > 32) throw new TypeError('too deep');
		if (v instanceof Uint8Array) return { $b: b64u(v) };
		if (v instanceof ArrayBuffer) return { $b: b64u(new Uint8Array(v)) };
		if (ArrayBuffer.isView(v)) return { $b: b64u(new Uint8Array(v.buffer, v.byteOffset, v.byteLength)) };
		if (Array.isArray(v)) return v.map((x) => enc(x, depth + 1));
		if (v && typeof v === 'object') {
			const o = {};
			for (const [k, x] of Object.entries(v)) o[k] = enc(x, depth + 1);
			return o;
		}
		return v;
	}
	function dec(v, depth = 0) {
		if (depth > 32) throw new TypeError('too deep');
		if (Array.isArray(v)) return v.map((x) => dec(x, depth + 1));
		if (v && typeof v === 'object') {
			const keys = Object.keys(v);
			if (keys.length === 1 && keys[0] === '$b' && typeof v.$b === 'string') return unb64u(v.$b);
			const o = {};
			for (const k of keys) o[k] = dec(v[k], depth + 1);
			return o;
		}
		return v;
	}
	const CODES = new Set([
		'no_plugin', 'no_default', 'unsupported', 'key_not_found', 'no_eligible_plugin', 'kid_collision',
		'auth_required', 'auth_cancelled', 'invalid_input', 'busy', 'assertion_only', 'corrupt_binding',
		'plugin_failed', 'internal', 'permission_denied',
	]);
	function wscaError(code, message, plugin) {
		const e = new Error(message);
		e.name = 'WSCAError';
		e.code = code;
		if (plugin) e.plugin = plugin;
		return e;
	}
	// toWire keeps a WSCAError's code, plugin and message (the manager's
	// messages carry no secrets) and a DOM-style error's name; anything else
	// becomes a generic internal error, its detail only in this console.
	function toWire(e) {
		if (e && e.name === 'WSCAError' && CODES.has(e.code)) {
			const w = { name: 'WSCAError', code: e.code, message: String(e.message || e.code) };
			if (typeof e.plugin === 'string') w.plugin = e.plugin;
			return w;
		}
		if (e && e.dom) return { name: e.name, dom: true, message: String(e.message) };
		console.error('wallet-companion: internal error', e);
		return { name: 'WSCAError', code: 'internal', message: 'internal error' };
	}
	self.WCWire = Object.freeze({ b64u, unb64u, enc, dec, wscaError, toWire, CODES });
})();
