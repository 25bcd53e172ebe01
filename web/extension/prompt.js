// A question the service worker asks the user: access for an origin, sharing
// a credential, a credential offer, or a PIN for a DC API flow. The origin
// shown is the one the browser gave the worker.
'use strict';
(async () => {
	const id = location.hash.slice(1);
	const $ = (s) => document.getElementById(s);
	const info = await chrome.runtime.sendMessage({ type: 'prompt-get', id });
	if (!info) {
		$('text').textContent = 'This request has expired.';
		return;
	}
	const li = (label, value) => {
		const e = document.createElement('li');
		e.textContent = label + ': ' + value;
		$('details').append(e);
	};
	const origin = document.createElement('strong');
	origin.id = 'origin';
	origin.textContent = info.origin;
	switch (info.kind) {
		case 'access':
			$('text').append(origin, ' asks to use the keys of your wallet (it will only see keys it makes).');
			break;
		case 'present':
			$('text').append(origin, ' asks for a credential.');
			li('credential', info.vct);
			li('claims', (info.claims || []).join(', ') || '(none)');
			break;
		case 'issue':
			$('text').append(origin, ' offers a credential; a new key will be made for it.');
			li('issuer', info.issuer);
			li('credentials', (info.configurations || []).join(', '));
			break;
		case 'pin':
			$('text').append('Your wallet PIN for ', info.displayName || info.plugin, ' (requested while ', origin, ' waits).');
			li('reason', info.reason);
			if (info.attempts >= 0) li('attempts left', info.attempts);
			$('pinform').hidden = false;
			$('allow').textContent = 'OK';
			$('deny').textContent = 'Cancel';
			break;
		default:
			$('text').textContent = 'Unknown request.';
			return;
	}
	const answer = (a) => chrome.runtime.sendMessage({ type: 'prompt-answer', id, answer: a }).finally(() => window.close());
	$('allow').disabled = false;
	$('allow').onclick = () => answer(info.kind === 'pin' ? { pin: $('pin').value } : { allow: true });
	$('deny').onclick = () => answer(null);
	$('pinform').onsubmit = (e) => {
		e.preventDefault();
		$('allow').click();
	};
	document.body.dataset.ready = info.kind;
})();
