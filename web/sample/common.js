// Helpers shared by the sample pages: base64url, WebCrypto verification of
// the manager's signatures (raw and WebAuthn), JWS, and a small SD-JWT VC
// issuer. Nothing here trusts the wallet: every signature is checked.
'use strict';
const WC = (() => {
	const te = new TextEncoder();
	const td = new TextDecoder();
	function b64u(bytes) {
		let s = '';
		for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
		return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
	}
	function unb64u(s) {
		const b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
		return Uint8Array.from(b, (c) => c.charCodeAt(0));
	}
	const sha256 = async (b) => new Uint8Array(await crypto.subtle.digest('SHA-256', b));
	const concat = (...a) => {
		const out = new Uint8Array(a.reduce((n, x) => n + x.length, 0));
		let o = 0;
		for (const x of a) {
			out.set(x, o);
			o += x.length;
		}
		return out;
	};
	const importJwk = (jwk) =>
		crypto.subtle.importKey('jwk', { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y }, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
	const verifyRaw = async (jwk, sig, msg) => crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, await importJwk(jwk), sig, msg);

	// verifySign checks a manager sign() result over data: raw r||s over
	// data, or a WebAuthn assertion over authenticatorData ||
	// SHA-256(clientDataJSON) whose challenge is SHA-256(data). It returns the
	// bytes the signature covers.
	async function verifySign(jwk, data, r) {
		if (r.format === 'raw') {
			if (!(await verifyRaw(jwk, r.signature, data))) throw new Error('raw signature does not verify');
			return data;
		}
		if (r.format !== 'webauthn') throw new Error('unknown format ' + r.format);
		const cd = JSON.parse(td.decode(r.clientDataJSON));
		if (cd.type !== 'webauthn.get') throw new Error('clientData type ' + cd.type);
		if (cd.challenge !== b64u(await sha256(data))) throw new Error('challenge is not SHA-256(data)');
		const signed = concat(r.authenticatorData, await sha256(r.clientDataJSON));
		if (!(await verifyRaw(jwk, r.signature, signed))) throw new Error('assertion signature does not verify');
		return signed;
	}

	function parseJWS(jws) {
		const [h, p, s] = jws.split('.');
		return { header: JSON.parse(td.decode(unb64u(h))), payload: JSON.parse(td.decode(unb64u(p))), input: te.encode(h + '.' + p), sig: unb64u(s) };
	}
	async function verifyJWS(jws, jwk) {
		const j = parseJWS(jws);
		if (j.header.alg !== 'ES256') throw new Error('alg ' + j.header.alg);
		if (!(await verifyRaw(jwk, j.sig, j.input))) throw new Error('JWS signature does not verify');
		return j;
	}
	async function signJWS(privateKey, header, payload) {
		const input = b64u(te.encode(JSON.stringify(header))) + '.' + b64u(te.encode(JSON.stringify(payload)));
		const sig = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, te.encode(input)));
		return input + '.' + b64u(sig);
	}

	// issueSDJWT makes an SD-JWT VC (vct, selectively disclosable claims,
	// cnf.jwk = the holder's key) signed by a fresh issuer key; it returns
	// the credential and the issuer's public JWK.
	async function issueSDJWT(holderJwk, vct, claims) {
		const kp = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
		const pub = await crypto.subtle.exportKey('jwk', kp.publicKey);
		const disclosures = [];
		const sd = [];
		for (const [name, value] of Object.entries(claims)) {
			const d = b64u(te.encode(JSON.stringify([b64u(crypto.getRandomValues(new Uint8Array(16))), name, value])));
			disclosures.push(d);
			sd.push(b64u(await sha256(te.encode(d))));
		}
		const now = Math.floor(Date.now() / 1000);
		const jwt = await signJWS(
			kp.privateKey,
			{ alg: 'ES256', typ: 'dc+sd-jwt' },
			{ iss: location.origin, iat: now, exp: now + 3600, vct, _sd_alg: 'sha-256', _sd: sd.sort(), cnf: { jwk: { kty: 'EC', crv: 'P-256', x: holderJwk.x, y: holderJwk.y } } },
		);
		return { credential: jwt + '~' + disclosures.map((d) => d + '~').join(''), issuerJwk: { kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y } };
	}

	// verifyPresentation checks an SD-JWT+KB presentation: the issuer's
	// signature, each disclosure's digest in _sd, the KB-JWT under cnf.jwk
	// (typ kb+jwt, nonce, aud, iat, sd_hash). It returns the disclosed claims.
	async function verifyPresentation(pres, issuerJwk, nonce, aud) {
		const parts = pres.split('~');
		const kb = parts.pop();
		const presented = parts.join('~') + '~';
		const [jwt, ...disc] = parts;
		const iss = await verifyJWS(jwt, issuerJwk);
		const claims = {};
		for (const d of disc) {
			if (!iss.payload._sd.includes(b64u(await sha256(te.encode(d))))) throw new Error('disclosure not in _sd');
			const [, name, value] = JSON.parse(td.decode(unb64u(d)));
			claims[name] = value;
		}
		const k = await verifyJWS(kb, iss.payload.cnf.jwk);
		if (k.header.typ !== 'kb+jwt') throw new Error('KB-JWT typ ' + k.header.typ);
		if (k.payload.nonce !== nonce) throw new Error('KB-JWT nonce');
		if (k.payload.aud !== aud) throw new Error('KB-JWT aud ' + k.payload.aud);
		if (Math.abs(k.payload.iat - Date.now() / 1000) > 300) throw new Error('KB-JWT iat');
		if (k.payload.sd_hash !== b64u(await sha256(te.encode(presented)))) throw new Error('KB-JWT sd_hash');
		return { claims, kb: k, vct: iss.payload.vct };
	}

	return { b64u, unb64u, sha256, concat, verifyRaw, verifySign, parseJWS, verifyJWS, issueSDJWT, verifyPresentation };
})();
