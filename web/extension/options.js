// Options: where the R2PS plugin's wscad is, the wallet unit, the FIDO2 RP
// id. Written to chrome.storage.local (wc:config); the worker reopens the
// manager when it changes. Only extension pages can write it.
'use strict';
(async () => {
	const $ = (s) => document.getElementById(s);
	const KEY = 'wc:config';
	const cfg = (await chrome.storage.local.get(KEY))[KEY] || {};
	for (const f of ['r2psURL', 'r2psUnit', 'fido2RpId']) $(f).value = cfg[f] || '';

	function loopback(u) {
		return u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
	}
	$('form').onsubmit = async (e) => {
		e.preventDefault();
		const next = {};
		const url = $('r2psURL').value.trim();
		if (url) {
			let u;
			try {
				u = new URL(url);
			} catch {
				$('status').textContent = 'not a URL';
				return;
			}
			if (!(u.protocol === 'https:' || (u.protocol === 'http:' && loopback(u)))) {
				$('status').textContent = 'the wscad URL must be https (or http on loopback)';
				return;
			}
			if (!loopback(u) && !(await chrome.permissions.request({ origins: [u.origin + '/*'] }))) {
				$('status').textContent = 'no permission to reach ' + u.origin;
				return;
			}
			next.r2psURL = u.href.replace(/\/$/, '');
		}
		const unit = $('r2psUnit').value.trim();
		if (unit) next.r2psUnit = unit;
		const rp = $('fido2RpId').value.trim().toLowerCase();
		if (rp) next.fido2RpId = rp;
		await chrome.storage.local.set({ [KEY]: next });
		$('status').textContent = 'saved';
		document.body.dataset.saved = String(Date.now());
	};

	async function showGrants() {
		const list = $('grants');
		list.replaceChildren();
		for (const o of await chrome.runtime.sendMessage({ type: 'grants' })) {
			const li = document.createElement('li');
			const b = document.createElement('button');
			b.textContent = 'revoke';
			b.onclick = async () => {
				await chrome.runtime.sendMessage({ type: 'revoke', origin: o });
				showGrants();
			};
			li.append(o + ' ', b);
			list.append(li);
		}
	}
	showGrants();
})();
