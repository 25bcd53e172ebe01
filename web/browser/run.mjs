// Drives Debian chromium through playwright-core for browser_test.go: loads
// the wallet-companion extension, runs the sample wallet, verifier and
// page-WASM pages, and prints one JSON object (checks, metrics, data) on
// stdout. Progress goes to stderr. Usage: node run.mjs config.json
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const log = (...a) => console.error('[run.mjs]', ...a);
const out = { checks: [], metrics: {}, data: {} };
const check = (name, ok, detail) => {
	out.checks.push({ name, ok: !!ok, detail: detail === undefined ? null : detail });
	log(ok ? 'ok  ' : 'FAIL', name, ok ? '' : JSON.stringify(detail));
};
// step runs fn; a throw is a failed check named name.
async function step(name, fn) {
	const t0 = Date.now();
	try {
		const r = await fn();
		log('step', name, `${Date.now() - t0} ms`);
		return r;
	} catch (e) {
		check(name, false, { error: String(e && e.stack ? e.stack : e) });
		return undefined;
	}
}

const userDataDir = mkdtempSync(join(tmpdir(), 'wsca-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
	executablePath: cfg.chromium,
	headless: true,
	args: [
		'--no-sandbox',
		'--disable-gpu',
		'--disable-quic',
		'--no-first-run',
		'--disable-background-networking',
		'--disable-component-update',
		'--disable-sync',
		`--disable-extensions-except=${cfg.extension}`,
		`--load-extension=${cfg.extension}`,
	],
});
context.setDefaultTimeout(30000);

// answerPrompt waits for the extension's prompt window of kind and clicks
// allow (with pin filled in) or deny.
async function answerPrompt(kind, { allow = true, pin } = {}) {
	const p = await context.waitForEvent('page', { predicate: (pg) => pg.url().includes('/prompt.html') });
	await p.waitForSelector(`body[data-ready="${kind}"]`);
	const origin = await p.textContent('#origin');
	if (pin !== undefined) await p.fill('#pin', pin);
	// The prompt closes itself when answered, possibly before the click returns.
	await p.click(allow ? '#allow' : '#deny').catch((e) => {
		if (!p.isClosed()) throw e;
	});
	return origin;
}
// withPrompt runs pageFn (an evaluate) and answers the one prompt it opens.
async function withPrompt(kind, opts, pageFn) {
	const answered = answerPrompt(kind, opts);
	const [r, origin] = await Promise.all([pageFn(), answered]);
	return { r, origin };
}

try {
	// 1. The extension loads: its service worker registers and manager.wasm
	// is loaded in it.
	let sw = context.serviceWorkers().find((w) => w.url().endsWith('/background.js'));
	if (!sw) sw = await context.waitForEvent('serviceworker', { predicate: (w) => w.url().endsWith('/background.js') });
	const extOrigin = sw.url().match(/^chrome-extension:\/\/[a-p]{32}/)[0];
	check('extension: service worker registered', !!sw, sw.url());
	const stats0 = await step('extension: manager.wasm loads in the worker', async () => {
		const opts = await context.newPage();
		await opts.goto(`${extOrigin}/options.html`);
		const s = await opts.evaluate(() => chrome.runtime.sendMessage({ type: 'stats' }));
		await opts.close();
		check('extension: manager.wasm loads in the worker', s && s.wasmLoadMs > 0 && !s.error, s);
		return s;
	});
	if (stats0) out.metrics.workerWasmLoadMs = stats0.wasmLoadMs;

	// 2. Options: the wscad URL and unit for r2ps, the FIDO2 RP id.
	await step('extension: options saved', async () => {
		const opts = await context.newPage();
		await opts.goto(`${extOrigin}/options.html`);
		await opts.fill('#r2psURL', 'http://wscad.example');
		await opts.click('#save');
		const refused = await opts.textContent('#status');
		check('extension: options refuse a wscad URL that is neither https nor loopback', /must be https/.test(refused), refused);
		await opts.fill('#r2psURL', cfg.wscad);
		await opts.fill('#r2psUnit', cfg.extUnit);
		await opts.fill('#fido2RpId', new URL(cfg.wallet).hostname);
		await opts.click('#save');
		await opts.waitForSelector('body[data-saved]');
		const s = await opts.evaluate(() => chrome.runtime.sendMessage({ type: 'stats' }));
		out.metrics.workerOpenMs = s.openMs;
		out.data.fido2State = s.fido2;
		check('extension: options saved, manager reopened', s.opens >= 2 && !s.error, s);
		await opts.close();
	});

	// 3. The wallet page (origin A = localhost:Q): nothing before access is
	// granted; then every plugin generates, signs and verifies.
	const page = await context.newPage();
	page.on('console', (m) => m.type() === 'error' && log('wallet console:', m.text()));
	const cdp = await context.newCDPSession(page);
	await cdp.send('WebAuthn.enable');
	await cdp.send('WebAuthn.addVirtualAuthenticator', {
		options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
	});
	await page.goto(`${cfg.wallet}/index.html`);
	await step('wallet: refused before access', async () => {
		const r = await page.evaluate(() => wallet.call('generate', { plugin: 'softkey' }));
		check('wallet: refused before access (permission_denied)', !r.ok && r.name === 'WSCAError' && r.code === 'permission_denied', r);
	});
	await step('wallet: access granted through the prompt', async () => {
		const { r, origin } = await withPrompt('access', {}, () => page.evaluate(() => wallet.grant()));
		check('wallet: access granted through the prompt naming the origin', r === true && origin === cfg.wallet, { r, origin });
	});
	const signs = {};
	for (const plugin of ['softkey', 'r2ps', 'fido2']) {
		await step(`wallet: ${plugin} generate + sign + WebCrypto verify`, async () => {
			if (plugin === 'r2ps') {
				await page.fill('#pin', cfg.pin);
				await page.evaluate((code) => wallet.enrol(code), cfg.extCode);
				const reqs = await page.evaluate(() => wallet.pinRequests.map((r) => ({ plugin: r.plugin, reason: r.reason })));
				check('wallet: r2ps enrolment asked the page for a PIN (register)', reqs.some((r) => r.plugin === 'r2ps' && r.reason === 'register'), reqs);
			}
			const r = await page.evaluate((p) => wallet.genSignVerify(p), plugin);
			signs[plugin] = r;
			out.data[plugin] = r;
			const wantFormat = plugin === 'fido2' ? 'webauthn' : 'raw';
			check(`wallet: ${plugin} generate + sign + WebCrypto verify`, r.verified && r.plugin === plugin && r.format === wantFormat, r);
		});
	}
	await step('wallet: r2ps PIN through the page callback (unlock)', async () => {
		const reqs = await page.evaluate(() => wallet.pinRequests.map((r) => ({ plugin: r.plugin, reason: r.reason })));
		check('wallet: r2ps PIN requests came to the page callback, naming the plugin', reqs.length > 0 && reqs.every((r) => r.plugin === 'r2ps'), reqs);
	});
	for (const [plugin, n] of [['softkey', 60], ['r2ps', 20], ['fido2', 10]]) {
		if (!signs[plugin]) continue;
		await step(`bench: ${plugin} in the extension`, async () => {
			out.metrics[`ext_${plugin}`] = await page.evaluate(([kid, n]) => wallet.bench(kid, n), [signs[plugin].kid, n]);
		});
	}

	await step('bench: a round trip page -> worker -> page', async () => {
		out.metrics.ext_roundtrip = await page.evaluate(async (n) => {
			await WalletCompanion.hasAccess();
			const t0 = performance.now();
			for (let i = 0; i < n; i++) await WalletCompanion.hasAccess();
			const ms = performance.now() - t0;
			return { n, ms, opsPerSec: (n * 1000) / ms };
		}, 100);
	});

	// 4. A credential for the DC API: an SD-JWT VC bound to a softkey key.
	const issued = await step('wallet: credential stored', async () => {
		const r = await page.evaluate(() => wallet.issueAndStore());
		check('wallet: SD-JWT VC stored, bound to its key', !!r.id, r);
		return r;
	});
	await step('wallet: credential bound to another key refused', async () => {
		const r = await page.evaluate(() => wallet.storeUnbound());
		check('wallet: a credential whose cnf is another key is refused (invalid_input)', !r.ok && r.code === 'invalid_input', r);
	});
	const walletKids = await page.evaluate(async () => (await WalletCompanion.list()).map((k) => k.kid));

	// 5. Origin B (127.0.0.1:P): no access, then access but not A's keys.
	const other = await context.newPage();
	await other.goto(`${cfg.other}/index.html`);
	await step('second origin: refused without permission', async () => {
		const l = await other.evaluate(() => wallet.call('list'));
		const s = await other.evaluate((kid) => wallet.call('sign', kid, new Uint8Array(32)), walletKids[0]);
		check('second origin: list and sign refused without permission (WSCAError permission_denied)',
			!l.ok && l.code === 'permission_denied' && l.name === 'WSCAError' && !s.ok && s.code === 'permission_denied', { l, s });
	});
	// The MV3 worker stopped while a call waits on the user (here an access
	// prompt; a PIN callback waits the same way): the call fails cleanly,
	// the stale prompt grants nothing, and the restarted worker has every
	// key and the softkey KEK back from storage.
	await step('worker restart', async () => {
		const ctl = await context.newPage();
		await ctl.goto(`${extOrigin}/options.html`);
		const ctlCDP = await context.newCDPSession(ctl);
		await ctlCDP.send('ServiceWorker.enable');
		const pending = other.evaluate(() => WalletCompanion.requestAccess().then((x) => ({ x }), (e) => ({ name: e.name, code: e.code, message: e.message })));
		const pr = await context.waitForEvent('page', { predicate: (pg) => pg.url().includes('/prompt.html') });
		await pr.waitForSelector('body[data-ready="access"]');
		await ctlCDP.send('ServiceWorker.stopAllWorkers');
		const r = await pending;
		await pr.click('#allow').catch(() => {});
		const l = await other.evaluate(() => wallet.call('list'));
		check('worker restart: a call waiting on the user fails cleanly (WSCAError internal) and the stale prompt grants nothing',
			r.name === 'WSCAError' && r.code === 'internal' && !l.ok && l.code === 'permission_denied', { r, l });
		const t0 = Date.now();
		const after = await page.evaluate(async (kids) => {
			const listed = (await WalletCompanion.list()).map((k) => k.kid);
			const data = crypto.getRandomValues(new Uint8Array(32));
			const keys = await WalletCompanion.list();
			const out = { listed: kids.every((k) => listed.includes(k)) };
			for (const plugin of ['softkey', 'r2ps']) {
				const k = keys.find((x) => x.plugin === plugin);
				const sig = await WalletCompanion.sign(k.kid, data);
				out[plugin] = !!(await WC.verifySign(k.publicJwk, data, sig));
			}
			return out;
		}, walletKids);
		// list + two signatures, the first of them waiting for manager.wasm
		out.metrics.workerRestartFirstCallsMs = Date.now() - t0;
		const st = await ctl.evaluate(() => chrome.runtime.sendMessage({ type: 'stats' }));
		out.metrics.workerRestartWasmLoadMs = st.wasmLoadMs;
		check('worker restart: keys, the softkey KEK and the r2ps plugin come back from storage', after.listed && after.softkey && after.r2ps, { after, st });
		await ctl.close();
	});
	// A content script (a compromised renderer runs code in its isolated
	// world) cannot answer the extension's prompt: only extension pages can.
	await step('second origin: denied access stays refused', async () => {
		const cdpOther = await context.newCDPSession(other);
		const contexts = [];
		cdpOther.on('Runtime.executionContextCreated', (e) => contexts.push(e.context));
		await cdpOther.send('Runtime.enable');
		const isolated = contexts.find((c) => c.auxData?.type === 'isolated' && c.origin === extOrigin);
		const pending = other.evaluate(() => WalletCompanion.requestAccess());
		const pr = await context.waitForEvent('page', { predicate: (pg) => pg.url().includes('/prompt.html') });
		await pr.waitForSelector('body[data-ready="access"]');
		const id = new URL(pr.url()).hash.slice(1);
		const forged = isolated
			? (await cdpOther.send('Runtime.evaluate', {
					contextId: isolated.id,
					awaitPromise: true,
					returnByValue: true,
					expression: `chrome.runtime.sendMessage({ type: 'prompt-answer', id: ${JSON.stringify(id)}, answer: { allow: true } }).then((r) => String(r), (e) => 'rejected')`,
				})).result.value
			: 'no isolated world';
		await pr.click('#deny').catch((e) => {
			if (!pr.isClosed()) throw e;
		});
		const r = await pending;
		const l = await other.evaluate(() => wallet.call('list'));
		check('second origin: a content script cannot answer the prompt; denied, the origin stays refused',
			!!isolated && forged !== 'true' && r === false && !l.ok && l.code === 'permission_denied', { forged, r, l });
	});
	await step("second origin: with access, none of the first origin's keys", async () => {
		const { r } = await withPrompt('access', {}, () => other.evaluate(() => WalletCompanion.requestAccess()));
		const l = await other.evaluate(() => wallet.call('list'));
		const s = await other.evaluate((kid) => wallet.call('sign', kid, new Uint8Array(32)), walletKids[0]);
		const d = await other.evaluate((kid) => wallet.call('delete', kid), walletKids[0]);
		check("second origin: granted, it lists none of the first origin's keys and cannot use them (key_not_found)",
			r === true && l.ok && l.value.length === 0 && !s.ok && s.code === 'key_not_found' && !d.ok && d.code === 'key_not_found' && walletKids.length >= 3,
			{ r, l, s, d, walletKids: walletKids.length });
	});

	// 6. The Digital Credentials API on a verifier page (origin B).
	const ver = await context.newPage();
	ver.on('console', (m) => m.type() === 'error' && log('verifier console:', m.text()));
	await ver.goto(`${cfg.other}/verifier.html`);
	if (issued) {
		await step('dc api: presentation', async () => {
			const { r, origin } = await withPrompt('present', {}, () => ver.evaluate((jwk) => verifier.present(jwk), issued.issuerJwk));
			out.data.presentation = { ...r, issuerJwk: issued.issuerJwk, holderKid: issued.kid };
			check('dc api: get({digital}) answered by the extension with an SD-JWT+KB verified by the verifier (KB-JWT by the bound key)',
				r.verified && r.protocol === 'openid4vp-v1-unsigned' && r.isDigitalCredential && r.claims.given_name === 'Erika' && !('family_name' in r.claims) &&
				r.aud === `origin:${cfg.other}` && origin === cfg.other,
				r);
		});
		await step('dc api: declined presentation', async () => {
			const { r } = await withPrompt('present', { allow: false }, () =>
				ver.evaluate((jwk) => verifier.present(jwk).then(() => ({ ok: true }), (e) => ({ name: e.name })), issued.issuerJwk));
			check('dc api: a declined presentation rejects with NotAllowedError', r.name === 'NotAllowedError', r);
		});
	}
	await step('dc api: unhandled requests reach the browser', async () => {
		const r = await ver.evaluate(() => verifier.unhandled());
		const same = (c) => !c.wrapper.wsca && !c.wrapper.resolved && c.wrapper.name === c.native.name && c.wrapper.message === c.native.message;
		check("dc api: native DigitalCredential present, get wrapped, unhandled requests get the browser's own answer",
			r.digitalCredentialNative && r.wrapped && Object.values(r.cases).every(same) && /digital-credentials/.test(r.cases.noMatch.wrapper.message), r);
	});
	await step('dc api: issuance proof', async () => {
		const { r } = await withPrompt('issue', {}, () => ver.evaluate(() => verifier.offer()));
		out.data.issuance = r;
		check('dc api: create({digital: openid4vci-v1}) returns a jwt proof verified by its jwk (typ, aud, nonce)', r.verified && r.header.typ === 'openid4vci-proof+jwt', r.header);
	});

	// A site has at most one prompt waiting for the user: a second request
	// meanwhile is refused at once, so a page cannot open window after window
	// (the DC API wrappers and requestAccess need no user gesture).
	await step('prompts: one at a time per site', async () => {
		let windows = 0;
		const deny = (pg) => {
			if (!pg.url().includes('/prompt.html')) return;
			windows++;
			pg.waitForSelector('body[data-ready]')
				.then(() => pg.click('#deny'))
				.catch(() => {});
		};
		context.on('page', deny);
		try {
			const dc = await ver.evaluate(async (jwk) => {
				const s = (p) => p.then(() => ({ ok: true }), (e) => ({ name: e.name, code: e.code }));
				const offers = await Promise.all([s(verifier.offer()), s(verifier.offer())]);
				const presents = jwk ? await Promise.all([s(verifier.present(jwk)), s(verifier.present(jwk))]) : null;
				return { offers, presents };
			}, issued ? issued.issuerJwk : null);
			const ctl = await context.newPage();
			await ctl.goto(`${extOrigin}/options.html`);
			await ctl.evaluate((o) => chrome.runtime.sendMessage({ type: 'revoke', origin: o }), cfg.other);
			await ctl.close();
			const access = await other.evaluate(() => {
				const s = (p) => p.then((v) => ({ ok: true, v }), (e) => ({ name: e.name, code: e.code }));
				return Promise.all([s(WalletCompanion.requestAccess()), s(WalletCompanion.requestAccess())]);
			});
			const want = issued ? 3 : 2;
			const refused = (r) => r.name === 'NotAllowedError';
			check('prompts: a second request of a site while its prompt waits is refused at once; one window each',
				windows === want && dc.offers.every(refused) && (!dc.presents || dc.presents.every(refused)) &&
				access[0].ok && access[0].v === false && access[1].name === 'WSCAError' && access[1].code === 'busy',
				{ windows, want, dc, access });
		} finally {
			context.off('page', deny);
		}
	});

	// Calls run one at a time, so a page that never answers its PIN callback
	// would hold every other site's calls: the worker gives up on it
	// (auth_cancelled) after wcLimits.callbackMs, shortened here. The 15 s
	// race only keeps a hang from stalling the run.
	await step('callbacks: a page that never answers is given up on', async () => {
		const w = context.serviceWorkers().find((x) => x.url().endsWith('/background.js'));
		await w.evaluate(() => {
			self.wcLimits.callbackMs = 300;
		});
		const r = await page.evaluate(async () => {
			const hang = () => new Promise((res) => setTimeout(() => res({ hung: true }), 15000));
			const s = (p) => Promise.race([p.then(() => ({ ok: true }), (e) => ({ name: e.name, code: e.code })), hang()]);
			WalletCompanion.onPIN(() => new Promise(() => {}));
			const enrol = s(WalletCompanion.enrol('r2ps', 'not-a-code'));
			const list = s(WalletCompanion.list());
			const out = { enrol: await enrol, list: await list };
			WalletCompanion.onPIN(null);
			return out;
		});
		check('callbacks: a PIN callback left unanswered fails (auth_cancelled) and the calls behind it run',
			r.enrol.code === 'auth_cancelled' && r.list.ok, r);
	});

	// 7. The same manager.wasm in a page (origin B, r2ps through CORS).
	const pw = await context.newPage();
	pw.on('console', (m) => m.type() === 'error' && log('page-wasm console:', m.text()));
	await pw.goto(`${cfg.other}/page-wasm.html`);
	await step('page wasm: softkey and r2ps', async () => {
		await pw.fill('#pin', cfg.pin);
		const r = await pw.evaluate(([r2ps, n]) => pageWallet.run(r2ps, n), [{ url: cfg.wscad, unit: cfg.pageUnit, code: cfg.pageCode }, 60]);
		out.metrics.pageWasmLoadMs = r.loadMs;
		out.metrics.page_softkey = r.softkey?.bench;
		out.metrics.page_r2ps = r.r2ps?.bench;
		out.data.pageSoftkey = r.softkey;
		out.data.pageR2ps = r.r2ps;
		check('page wasm: softkey generate + sign + WebCrypto verify', r.softkey?.verified && r.softkey.plugin === 'softkey', r.softkey);
		check('page wasm: r2ps enrol, PIN through the page callback, sign, WebCrypto verify',
			r.r2ps?.verified && r.r2ps.plugin === 'r2ps' && r.pinRequests.some((q) => q.plugin === 'r2ps'), { r2ps: r.r2ps, pin: r.pinRequests });
	});
} catch (e) {
	check('run', false, { error: String(e && e.stack ? e.stack : e) });
} finally {
	await context.close().catch(() => {});
	rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
