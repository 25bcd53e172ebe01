// The sample wallet: every step through window.WalletCompanion, every
// signature verified here with WebCrypto. window.wallet is also what the
// browser tests (web/browser/run.mjs) call.
'use strict';
const wallet = (() => {
	const out = document.getElementById('out');
	const log = (x) => (out.textContent = (typeof x === 'string' ? x : JSON.stringify(x, null, 1)) + '\n' + out.textContent);
	const WCo = () => {
		if (!window.WalletCompanion) throw new Error('the wallet-companion extension is not installed');
		return window.WalletCompanion;
	};
	const pinRequests = [];
	function installPIN() {
		WCo().onPIN(async (req) => {
			pinRequests.push(req);
			const pin = document.getElementById('pin').value;
			return pin === '' ? null : pin;
		});
	}

	async function grant() {
		const ok = await WCo().requestAccess();
		log('access: ' + ok);
		return ok;
	}

	async function enrol(code) {
		installPIN();
		await WCo().enrol('r2ps', code);
		log('enrolled');
		return true;
	}

	// genSignVerify makes a key with plugin, signs data with it and verifies
	// the signature; it returns what Go checks again.
	async function genSignVerify(plugin, data = crypto.getRandomValues(new Uint8Array(64))) {
		installPIN();
		const W = WCo();
		const g = await W.generate({ plugin });
		const r = await W.sign(g.kid, data);
		const signed = await WC.verifySign(g.publicJwk, data, r);
		const res = { kid: g.kid, plugin: r.plugin, genPlugin: g.plugin, amr: r.amr, format: r.format, publicJwk: g.publicJwk, signed: WC.b64u(signed), signature: WC.b64u(r.signature), verified: true };
		log(res);
		return res;
	}

	// bench signs n times with kid; signatures per second.
	async function bench(kid, n) {
		const W = WCo();
		const data = crypto.getRandomValues(new Uint8Array(32));
		await W.sign(kid, data);
		const t0 = performance.now();
		for (let i = 0; i < n; i++) await W.sign(kid, data);
		const ms = performance.now() - t0;
		return { n, ms, opsPerSec: (n * 1000) / ms };
	}

	// issueAndStore: a softkey key, an SD-JWT VC for it from the sample
	// issuer, stored in the extension.
	async function issueAndStore(vct = 'urn:eudi:pid:1', plugin = 'softkey') {
		const W = WCo();
		const g = await W.generate({ plugin });
		const { credential, issuerJwk } = await WC.issueSDJWT(g.publicJwk, vct, { given_name: 'Erika', family_name: 'Mustermann', birthdate: '1964-08-12' });
		const { id } = await W.storeCredential({ credential, kid: g.kid });
		log('stored credential ' + id + ' bound to ' + g.kid);
		return { id, kid: g.kid, issuerJwk };
	}

	// storeUnbound tries to store a credential bound to another key than
	// the one named; the extension must refuse it.
	async function storeUnbound() {
		const W = WCo();
		const g = await W.generate({ plugin: 'softkey' });
		const other = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign']);
		const jwk = await crypto.subtle.exportKey('jwk', other.publicKey);
		const { credential } = await WC.issueSDJWT(jwk, 'urn:eudi:pid:1', { given_name: 'Mallory' });
		return call('storeCredential', { credential, kid: g.kid });
	}

	async function call(name, ...args) {
		try {
			return { ok: true, value: await WCo()[name](...args) };
		} catch (e) {
			return { ok: false, name: e.name, code: e.code, message: e.message };
		}
	}

	document.getElementById('ext').textContent = window.WalletCompanion ? '(extension present)' : '(extension missing)';
	document.getElementById('grant').onclick = () => grant().catch((e) => log(e.name + ' ' + e.code + ': ' + e.message));
	document.getElementById('enrol').onclick = () => enrol(document.getElementById('code').value).catch((e) => log(e.code + ': ' + e.message));
	document.getElementById('issue').onclick = () => issueAndStore().catch((e) => log(e.code + ': ' + e.message));
	document.getElementById('list').onclick = async () => log(await call('list'));
	for (const b of document.querySelectorAll('button[data-plugin]')) {
		b.onclick = () => genSignVerify(b.dataset.plugin).catch((e) => log(e.name + ' ' + (e.code || '') + ': ' + e.message));
	}
	return { grant, enrol, genSignVerify, bench, issueAndStore, storeUnbound, call, pinRequests };
})();
