// The sample verifier and issuer: plain navigator.credentials calls of the
// Digital Credentials API, answered by the wallet-companion extension when it
// handles the request, by the browser otherwise.
'use strict';
const verifier = (() => {
	const out = document.getElementById('out');
	const log = (x) => (out.textContent = (typeof x === 'string' ? x : JSON.stringify(x, null, 1)) + '\n' + out.textContent);
	const nonce = () => WC.b64u(crypto.getRandomValues(new Uint8Array(16)));

	// present asks for a PID's given_name; issuerJwk is the verifier's trust
	// anchor for the issuer.
	async function present(issuerJwk, vct = 'urn:eudi:pid:1') {
		const n = nonce();
		const cred = await navigator.credentials.get({
			digital: {
				requests: [{
					protocol: 'openid4vp-v1-unsigned',
					data: {
						response_type: 'vp_token',
						response_mode: 'dc_api',
						nonce: n,
						dcql_query: { credentials: [{ id: 'pid', format: 'dc+sd-jwt', meta: { vct_values: [vct] }, claims: [{ path: ['given_name'] }] }] },
					},
				}],
			},
		});
		const pres = cred.data.vp_token.pid[0];
		const v = await WC.verifyPresentation(pres, issuerJwk, n, 'origin:' + location.origin);
		const res = {
			protocol: cred.protocol,
			isDigitalCredential: typeof DigitalCredential === 'function' && cred instanceof DigitalCredential,
			claims: v.claims,
			vct: v.vct,
			kbHeader: v.kb.header,
			aud: v.kb.payload.aud,
			presentation: pres,
			verified: true,
		};
		log(res);
		return res;
	}

	// unhandled sends requests the extension does not handle and compares
	// each outcome with the browser's own function called directly.
	async function unhandled() {
		const native = CredentialsContainer.prototype.get;
		const outcome = async (f) => {
			try {
				const r = await f();
				return { resolved: true, type: r && r.type };
			} catch (e) {
				return { name: e.name, message: e.message, wsca: e.name === 'WSCAError' };
			}
		};
		// Every call carries a signal, so that a pending native request
		// (Chromium keeps the first one of a page open in a headless run)
		// ends too.
		const sig = () => AbortSignal.timeout(2000);
		const cases = {
			unknownProtocol: () => ({ signal: sig(), digital: { requests: [{ protocol: 'org.example.unknown', data: {} }] } }),
			mdoc: () => ({ signal: sig(), digital: { requests: [{ protocol: 'org-iso-mdoc', data: { deviceRequest: 'oA', encryptionInfo: 'oA' } }] } }),
			noMatch: () => ({
				signal: sig(),
				digital: { requests: [{ protocol: 'openid4vp-v1-unsigned', data: { nonce: nonce(), dcql_query: { credentials: [{ id: 'x', format: 'dc+sd-jwt', meta: { vct_values: ['urn:nothing-stored'] } }] } } }] },
			}),
		};
		const res = {
			digitalCredentialNative: typeof DigitalCredential === 'function',
			wrapped: navigator.credentials.get !== native,
			first: await outcome(() => native.call(navigator.credentials, cases.mdoc())),
			cases: {},
		};
		for (const [name, opts] of Object.entries(cases)) {
			res.cases[name] = {
				wrapper: await outcome(() => navigator.credentials.get(opts())),
				native: await outcome(() => native.call(navigator.credentials, opts())),
			};
		}
		// create: an openid4vci-v1 request without a nonce is not handled.
		const nativeCreate = CredentialsContainer.prototype.create;
		const badOffer = () => ({ signal: sig(), digital: { requests: [{ protocol: 'openid4vci-v1', data: { credential_offer: { credential_issuer: location.origin, credential_configuration_ids: ['x'] } } }] } });
		res.cases.createNoNonce = {
			wrapper: await outcome(() => navigator.credentials.create(badOffer())),
			native: await outcome(() => nativeCreate.call(navigator.credentials, badOffer())),
		};
		log(res);
		return res;
	}

	// offer runs the issuance side: a credential offer through
	// navigator.credentials.create; the answer is an OpenID4VCI jwt proof,
	// verified here with the jwk in its header.
	async function offer() {
		const n = nonce();
		const issuer = location.origin;
		const cred = await navigator.credentials.create({
			digital: { requests: [{ protocol: 'openid4vci-v1', data: { credential_offer: { credential_issuer: issuer, credential_configuration_ids: ['pid-sd-jwt'] }, nonce: n } }] },
		});
		const jwt = cred.data.proofs.jwt[0];
		const j = WC.parseJWS(jwt);
		await WC.verifyJWS(jwt, j.header.jwk);
		if (j.header.typ !== 'openid4vci-proof+jwt') throw new Error('proof typ ' + j.header.typ);
		if (j.payload.aud !== issuer || j.payload.nonce !== n) throw new Error('proof aud/nonce');
		const res = { protocol: cred.protocol, header: j.header, payload: j.payload, jwt, verified: true };
		log(res);
		return res;
	}

	document.getElementById('present').onclick = () => present(JSON.parse(prompt('issuer JWK') || 'null')).catch((e) => log(e.name + ': ' + e.message));
	document.getElementById('offer').onclick = () => offer().catch((e) => log(e.name + ': ' + e.message));
	return { present, unhandled, offer };
})();
