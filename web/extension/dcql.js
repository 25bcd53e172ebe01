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
	// payload and the disclosures (an object property's, with its name, or an
	// array element's, name null); it throws invalid_input on anything else.
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
				if (!Array.isArray(v) || typeof v[0] !== 'string') throw new Error('disclosure');
				if (v.length === 3 && typeof v[1] === 'string') return { raw: d, name: v[1] };
				// An array element ([salt, value]): no name, so never disclosed by one.
				if (v.length === 2) return { raw: d, name: null };
				throw new Error('disclosure');
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

	// claimOptions returns the top-level claim names a DCQL credential query
	// asks for, as a list of options in the verifier's order of preference
	// (claim_sets; one option when there are none), or [[]] when it has no
	// claims: then it requests no selectively disclosable claim (OpenID4VP
	// 1.0 §6.4.1). null: a malformed claims query.
	function claimOptions(cq) {
		if (cq.claims === undefined) return cq.claim_sets === undefined ? [[]] : null;
		if (!Array.isArray(cq.claims) || cq.claims.length === 0) return null;
		const byID = new Map();
		const all = [];
		for (const c of cq.claims) {
			const n = Array.isArray(c?.path) ? c.path[0] : undefined;
			if (typeof n !== 'string') return null;
			if (typeof c.id === 'string') byID.set(c.id, n);
			all.push(n);
		}
		if (cq.claim_sets === undefined) return [all];
		if (!Array.isArray(cq.claim_sets) || cq.claim_sets.length === 0) return null;
		const options = [];
		for (const set of cq.claim_sets) {
			if (!Array.isArray(set) || set.length === 0 || !set.every((id) => typeof id === 'string' && byID.has(id))) return null;
			options.push(set.map((id) => byID.get(id)));
		}
		return options;
	}

	// matchQuery finds a stored credential for one DCQL credential query: format
	// dc+sd-jwt, a vct among meta.vct_values, and every top-level claim of the
	// first claim option it can satisfy present (disclosed or plain, the
	// payload's own members only). It discloses the disclosures of those
	// claims and nothing else: none when the query names no claims.
	function matchQuery(cq, creds) {
		if (!cq || typeof cq.id !== 'string' || (cq.format !== 'dc+sd-jwt' && cq.format !== 'vc+sd-jwt')) return null;
		const vcts = cq.meta?.vct_values;
		const options = claimOptions(cq);
		if (!options) return null;
		for (const c of creds) {
			if (Array.isArray(vcts) && !vcts.includes(c.vct)) continue;
			let sd;
			try {
				sd = parseSDJWT(c.credential);
			} catch {
				continue;
			}
			const names = new Set(sd.disclosures.map((d) => d.name));
			const want = options.find((o) => o.every((n) => names.has(n) || Object.hasOwn(sd.payload, n)));
			if (!want) continue;
			const disclose = sd.disclosures.filter((d) => want.includes(d.name));
			return { cred: c, queryId: cq.id, sd, disclose, claims: [...new Set(want)] };
		}
		return null;
	}

	self.WCDC = Object.freeze({ parseSDJWT, requestData, matchQuery });
})();
