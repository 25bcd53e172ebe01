// wallet-companion content script (isolated world, document_start): relays
// between the page's window.WalletCompanion (inject.js, MAIN world) and the
// service worker over one port. The worker learns the page's origin from
// the port (sender.origin), never from these messages.
'use strict';
(() => {
	const FROM_PAGE = 'wallet-companion:page';
	const TO_PAGE = 'wallet-companion:ext';
	const HEARTBEAT_MS = 20000; // under the MV3 worker's 30 s idle limit
	let port = null;
	let heartbeat = null;
	const inflight = new Set();

	function toPage(m) {
		window.postMessage({ tag: TO_PAGE, ...m }, location.origin);
	}
	function stopHeartbeat() {
		if (heartbeat) clearInterval(heartbeat);
		heartbeat = null;
	}
	function connect() {
		port = chrome.runtime.connect({ name: 'wallet-companion' });
		port.onMessage.addListener((m) => {
			if (!m || typeof m !== 'object') return;
			if (m.cb) {
				toPage({ kind: 'cb', cb: m.cb, cbid: m.cbid, payload: m.payload });
				return;
			}
			if (!inflight.delete(m.id)) return;
			if (inflight.size === 0) stopHeartbeat();
			toPage({ kind: 'result', id: m.id, ok: m.ok, result: m.result, error: m.error });
		});
		port.onDisconnect.addListener(() => {
			// The worker stopped (or the extension was reloaded): every call in
			// flight fails cleanly; the next call connects again.
			void chrome.runtime.lastError;
			port = null;
			stopHeartbeat();
			for (const id of inflight) {
				toPage({ kind: 'result', id, ok: false, error: { name: 'WSCAError', code: 'internal', message: 'the wallet stopped; try again' } });
			}
			inflight.clear();
		});
	}
	window.addEventListener('message', (ev) => {
		if (ev.source !== window || !ev.data || ev.data.tag !== FROM_PAGE) return;
		const m = ev.data;
		try {
			if (m.kind === 'call' && typeof m.id === 'number') {
				if (!port) connect();
				inflight.add(m.id);
				if (!heartbeat) heartbeat = setInterval(() => port?.postMessage({ ping: 1 }), HEARTBEAT_MS);
				port.postMessage({ id: m.id, op: m.op, args: m.args });
			} else if (m.kind === 'cbresult' && typeof m.cbid === 'number') {
				port?.postMessage({ cbid: m.cbid, ok: m.ok === true, result: m.result });
			}
		} catch {
			if (m.kind === 'call') {
				inflight.delete(m.id);
				toPage({ kind: 'result', id: m.id, ok: false, error: { name: 'WSCAError', code: 'internal', message: 'the wallet is unavailable' } });
			}
		}
	});
})();
