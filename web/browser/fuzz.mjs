// Fuzzes the extension's parsers of page input (web/extension/wire.js and
// dcql.js) under Node: seeds plus seeded random mutations. Each parser must
// return a well-formed value or throw its one error kind, never anything
// else. Usage: node fuzz.mjs [iterations] [seed]; prints one JSON line.
import { readFileSync } from 'node:fs';
import vm from 'node:vm';

const iterations = Number(process.argv[2] || 5000);
let state = BigInt(process.argv[3] || 1) || 1n;
function rand() {
	// xorshift64*
	state ^= state >> 12n;
	state ^= (state << 25n) & 0xffffffffffffffffn;
	state ^= state >> 27n;
	return Number(((state * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn) >> 11n) / 2 ** 53;
}
const pick = (a) => a[Math.floor(rand() * a.length)];

const ctx = vm.createContext({ TextDecoder, TextEncoder, atob, btoa, console, ArrayBuffer, Uint8Array });
ctx.self = ctx;
for (const f of ['wire.js', 'dcql.js']) vm.runInContext(readFileSync(new URL(`../extension/${f}`, import.meta.url), 'utf8'), ctx, { filename: f });
const { parseSDJWT, requestData, matchQuery } = ctx.WCDC;
const { dec, unb64u } = ctx.WCWire;

const b64u = (s) => Buffer.from(s).toString('base64url');
const disclosure = (name, value) => b64u(JSON.stringify(['salt', name, value]));
const jwt = (payload) => `${b64u('{"alg":"ES256","typ":"dc+sd-jwt"}')}.${b64u(JSON.stringify(payload))}.${b64u('sig')}`;
const goodCred = jwt({ vct: 'urn:eudi:pid:1', _sd: [], cnf: { jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y' } } }) + '~' + disclosure('given_name', 'Erika') + '~' + disclosure('age', 42) + '~';
const seeds = [
	goodCred,
	jwt({ vct: 'v' }) + '~',
	'a.b.c~',
	'~',
	'',
	jwt([1, 2]) + '~' + b64u('[1,2]') + '~',
	jwt({ vct: 'v' }) + '~' + b64u('{"__proto__":1}') + '~',
];
const queries = [
	{ id: 'pid', format: 'dc+sd-jwt', meta: { vct_values: ['urn:eudi:pid:1'] }, claims: [{ path: ['given_name'] }] },
	{ id: 'pid', format: 'dc+sd-jwt' },
	{ id: 'x', format: 'vc+sd-jwt', claims: [{ path: [['nested']] }] },
	{ id: 'x', format: 'dc+sd-jwt', claims: [{ path: ['__proto__'] }, { path: ['constructor'] }] },
];
const alphabet = ['~', '.', 'A', '_', '-', '=', '{', '"', '\u0000', 'é', 'eyJ', '~~', '..'];

function mutateString(s) {
	let out = s;
	const n = 1 + Math.floor(rand() * 4);
	for (let i = 0; i < n; i++) {
		const at = Math.floor(rand() * (out.length + 1));
		switch (Math.floor(rand() * 4)) {
			case 0: out = out.slice(0, at) + pick(alphabet) + out.slice(at); break;
			case 1: out = out.slice(0, at) + out.slice(at + 1 + Math.floor(rand() * 8)); break;
			case 2: out = out.slice(0, at); break;
			default: out = out.slice(0, at) + pick(seeds).slice(0, 40) + out.slice(at);
		}
	}
	return out;
}
function randomValue(depth = 0) {
	const r = rand();
	if (depth > 4 || r < 0.25) return pick([null, true, 0, -1, 1e308, '', 'x', '~', '$b', 'urn:eudi:pid:1', 'given_name']);
	if (r < 0.45) return mutateString(pick(seeds));
	if (r < 0.7) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(depth + 1));
	const o = {};
	for (let i = Math.floor(rand() * 4); i > 0; i--) o[pick(['id', 'format', 'meta', 'vct_values', 'claims', 'path', '$b', 'data', 'nonce', '__proto__'])] = randomValue(depth + 1);
	return o;
}
function mutateQuery(q) {
	const c = JSON.parse(JSON.stringify(q));
	const keys = ['id', 'format', 'meta', 'claims'];
	for (let i = Math.floor(rand() * 3); i >= 0; i--) {
		const k = pick(keys);
		if (rand() < 0.5) delete c[k];
		else c[k] = randomValue();
	}
	return c;
}

const failures = [];
function expect(name, input, fn, okThrow) {
	try {
		fn();
	} catch (e) {
		if (!okThrow(e)) failures.push({ name, input: String(JSON.stringify(input)).slice(0, 200), error: `${e?.name}: ${e?.message}` });
	}
}
// Errors made inside the vm context are of its own realm: compare names.
const typeErr = (e) => e?.name === 'TypeError' || e?.name === 'InvalidCharacterError';
const invalidInput = (e) => e && e.name === 'WSCAError' && e.code === 'invalid_input';

const stored = [{ vct: 'urn:eudi:pid:1', credential: goodCred }, { vct: 'v', credential: 'garbage~' }];
for (let i = 0; i < iterations; i++) {
	const s = i < seeds.length ? seeds[i] : mutateString(pick(seeds));
	expect('parseSDJWT', s, () => {
		const r = parseSDJWT(s);
		if (!r.payload || typeof r.payload !== 'object' || !Array.isArray(r.disclosures)) throw new Error('bad result');
	}, invalidInput);
	const v = randomValue();
	expect('parseSDJWT(any)', v, () => parseSDJWT(v), invalidInput);
	expect('dec', v, () => dec(v), typeErr);
	expect('unb64u', s, () => unb64u(s), typeErr);
	expect('requestData', v, () => requestData({ data: rand() < 0.5 ? v : JSON.stringify(v) }), () => false);
	const q = i < queries.length ? queries[i] : rand() < 0.5 ? mutateQuery(pick(queries)) : randomValue();
	const creds = rand() < 0.8 ? stored : [{ vct: randomValue(), credential: mutateString(goodCred) }];
	expect('matchQuery', q, () => {
		const m = matchQuery(q, creds);
		if (m !== null && (typeof m.queryId !== 'string' || !Array.isArray(m.disclose))) throw new Error('bad match');
	}, () => false);
}
// The seeds' expected answers: the good credential parses and matches.
const m = matchQuery(queries[0], stored);
if (!m || m.disclose.length !== 1 || m.disclose[0].name !== 'given_name') failures.push({ name: 'seed match', error: JSON.stringify(m) });
if (matchQuery({ ...queries[0], meta: { vct_values: ['other'] } }, stored) !== null) failures.push({ name: 'seed no match', error: 'matched another vct' });
// What a presentation discloses (OpenID4VP 1.0 §6.4.1): no claims named, no
// disclosure; a claim name matches the payload's own members only, never
// an inherited one; with claim_sets, the first option the credential can
// satisfy and nothing of the others.
const discloses = (q) => {
	const r = matchQuery(q, stored);
	return r && { names: r.disclose.map((d) => d.name), claims: r.claims };
};
const disclosureCases = [
	['no claims', { id: 'pid', format: 'dc+sd-jwt' }, { names: [], claims: [] }],
	['inherited name', { id: 'pid', format: 'dc+sd-jwt', claims: [{ path: ['toString'] }] }, null],
	['__proto__', { id: 'pid', format: 'dc+sd-jwt', claims: [{ path: ['__proto__'] }] }, null],
	['empty claims', { id: 'pid', format: 'dc+sd-jwt', claims: [] }, null],
	['claim_sets first option', { id: 'pid', format: 'dc+sd-jwt', claims: [{ id: 'a', path: ['given_name'] }, { id: 'b', path: ['age'] }], claim_sets: [['b'], ['a']] }, { names: ['age'], claims: ['age'] }],
	['claim_sets second option', { id: 'pid', format: 'dc+sd-jwt', claims: [{ id: 'x', path: ['nope'] }, { id: 'a', path: ['given_name'] }], claim_sets: [['x'], ['a']] }, { names: ['given_name'], claims: ['given_name'] }],
	['claim_sets unknown id', { id: 'pid', format: 'dc+sd-jwt', claims: [{ id: 'a', path: ['given_name'] }], claim_sets: [['z']] }, null],
	['claim_sets without claims', { id: 'pid', format: 'dc+sd-jwt', claim_sets: [['a']] }, null],
];
for (const [name, q, want] of disclosureCases) {
	const got = discloses(q);
	if (JSON.stringify(got) !== JSON.stringify(want)) failures.push({ name: 'disclosure: ' + name, error: `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}` });
}
// Array element disclosures ([salt, value], SD-JWT §4.2.2; a PID's
// nationalities) are part of a valid credential: it is accepted, and they are
// not disclosed by a claim name.
const withArray = goodCred + b64u(JSON.stringify(['salt', 'DE'])) + '~';
try {
	const r = parseSDJWT(withArray);
	if (r.disclosures.length !== 3 || r.disclosures[2].name !== null) failures.push({ name: 'array element disclosure', error: JSON.stringify(r.disclosures) });
	const m2 = matchQuery(queries[0], [{ vct: 'urn:eudi:pid:1', credential: withArray }]);
	if (!m2 || m2.disclose.map((d) => d.name).join() !== 'given_name') failures.push({ name: 'array element disclosure match', error: JSON.stringify(m2) });
} catch (e) {
	failures.push({ name: 'array element disclosure', error: String(e?.message) });
}
// A disclosure's salt is a string (SD-JWT §4.2.1).
for (const bad of [[1, 'n', 'v'], [null, 'DE'], ['salt'], ['s', 1, 'v']]) {
	try {
		parseSDJWT(goodCred + b64u(JSON.stringify(bad)) + '~');
		failures.push({ name: 'malformed disclosure', error: `${JSON.stringify(bad)} accepted` });
	} catch (e) {
		if (!invalidInput(e)) failures.push({ name: 'malformed disclosure', error: String(e) });
	}
}
// An SD-JWT over 64 KiB is refused even when well formed.
const big = jwt({ vct: 'v' }) + '~' + (disclosure('n', 'x') + '~').repeat(3000);
try {
	parseSDJWT(big);
	failures.push({ name: 'size bound', error: `a ${big.length}-character SD-JWT parsed` });
} catch (e) {
	if (!invalidInput(e)) failures.push({ name: 'size bound', error: String(e) });
}
process.stdout.write(JSON.stringify({ iterations, failures: failures.slice(0, 20), failed: failures.length }) + '\n');
