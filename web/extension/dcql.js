// The parsers of what pages hand the extension: SD-JWT VCs
// (storeCredential) and Digital Credentials API request data (DCQL). Loaded
// by the worker (importScripts) and by web/browser/fuzz.mjs.
'use strict';
(() => {
	const { unb64u, wscaError } = self.WCWire;

	function parseJSONPart(s) {
		return JSON.parse(new TextDecoder().decode(unb64u(s)));
	}

	// parseSDJWT splits "<jwt>~<disclosure>~...~" and decodes the issuer JWT's
	// payload and the disclosures; it throws invalid_input on anything else.
	function parseSDJWT(s) {
		if (typeof s !== 'string' || s.length > 64 * 1024 || !s.endsWith('~')) throw wscaError('invalid_input', 'not an SD-JWT');
		const parts = s.split('~');
		parts.pop();
		const jwt = parts.shift();
		const seg = (jwt || '').split('.');
		if (seg.length !== 3) throw wscaError('invalid_input', 'not an SD-JWT');
		let payload, disclosures;
		try {
			payload = parseJSONPart(seg[1]);
			disclosures = parts.map((d) => {
				const v = parseJSONPart(d);
				if (!Array.isArray(v) || v.length !== 3 || typeof v[1] !== 'string') throw new Error('disclosure');
				return { raw: d, name: v[1] };
			});
		} catch {
			throw wscaError('invalid_input', 'not an SD-JWT');
		}
		if (!payload || typeof payload !== 'object') throw wscaError('invalid_input', 'not an SD-JWT');
		return { jwt, payload, disclosures };
	}

	function requestData(req) {
		let d = req?.data;
		if (typeof d === 'string') {
			try {
				d = JSON.parse(d);
			} catch {
				return null;
			}
		}
		return d && typeof d === 'object' ? d : null;
	}

	// matchQuery finds a stored credential for one DCQL credential query: format
	// dc+sd-jwt, a vct among meta.vct_values, and every requested top-level claim
	// present (disclosed or plain).
	function matchQuery(cq, creds) {
		if (!cq || typeof cq.id !== 'string' || (cq.format !== 'dc+sd-jwt' && cq.format !== 'vc+sd-jwt')) return null;
		const vcts = cq.meta?.vct_values;
		const want = Array.isArray(cq.claims) ? cq.claims.map((c) => (Array.isArray(c?.path) ? c.path[0] : undefined)) : null;
		if (want && want.some((n) => typeof n !== 'string')) return null;
		for (const c of creds) {
			if (Array.isArray(vcts) && !vcts.includes(c.vct)) continue;
			let sd;
			try {
				sd = parseSDJWT(c.credential);
			} catch {
				continue;
			}
			const names = new Set(sd.disclosures.map((d) => d.name));
			if (want && !want.every((n) => names.has(n) || n in sd.payload)) continue;
			const disclose = want ? sd.disclosures.filter((d) => want.includes(d.name)) : sd.disclosures;
			return { cred: c, queryId: cq.id, sd, disclose, claims: want || [...names] };
		}
		return null;
	}

	self.WCDC = Object.freeze({ parseSDJWT, requestData, matchQuery });
})();
