// The doctor's page: sign in to the relay with the doctor's key (daemons/relayd/relayd.h, the
// HTTP API), unwrap each granted stream's root, open its readings here and chart them, polling
// every POLL_MS for new ones; acknowledge emergencies. What goes to the relay: signed envelopes
// (a RELAY_LOGIN, EMERGENCY_ACKs), the bearer token, stream ids and seqs. Never the key (a
// non-extractable CryptoKey once loaded), a root, a stream key or a value in the clear.
import * as ic from "./iotsec.js";
import * as view from "./view.js";

const POLL_MS = 2000;
const HISTORY_MAX = 1000; // RELAYD_FETCH_MAX
// History is by seq: a reading stored late (committed by another relay instance after a later
// seq, or sent again by a kit after an outage) can have a seq below the newest we have. Every
// RESCAN_POLLS polls the last RESCAN_BACK seqs are read again, and what is new in them charted.
const RESCAN_POLLS = 30;
const RESCAN_BACK = HISTORY_MAX;
const ACKED_KEY = "iotsec.acked."; // localStorage: the highest seq acknowledged per kit

const state = {
	ident: null,
	token: null,
	relay: "",
	streams: new Map(), // stream hex -> {s: ic.Stream, after: seq, seen: Set of seqs}
	polls: 0,
	refused: new Map(), // stream hex -> {what, count, why}: streams or readings that did not open
	emergencies: new Map(), // kit -> [{kit, header, value}]
	acking: new Set(), // kits with an acknowledgement on its way
	expired: [],
	timer: null,
	generation: 0, // bumped at sign-out: answers for an older session are dropped
	skewMs: 0, // the relay's clock (its Date header) less ours
};

class ApiError extends Error {
	constructor(status, message) {
		super(message);
		this.status = status;
	}
}

// One call of the relay's API, on this page's own origin. 401 on a call that needs the token:
// sign in again (the key is still here) and try once more.
async function api(method, path, body, again = true) {
	const headers = {};
	if (state.token && !path.startsWith("/api/challenge") && path !== "/api/login")
		headers.Authorization = `Bearer ${state.token}`;
	if (body !== undefined) headers["Content-Type"] = "application/json";
	const r = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
	const date = Date.parse(r.headers.get("Date") || "");
	if (Number.isFinite(date)) state.skewMs = date - Date.now();
	let j = {};
	try {
		j = await r.json();
	} catch {
		// An answer that is not JSON: its status says enough.
	}
	if (r.status === 401 && headers.Authorization && again) {
		await login();
		return api(method, path, body, false);
	}
	if (!r.ok) throw new ApiError(r.status, `${method} ${path.split("?")[0]}: ${r.status} ${j.error || r.statusText}`);
	return j;
}

async function login() {
	state.token = null;
	const c = await api("GET", "/api/challenge");
	if (typeof c.relay !== "string" || typeof c.nonce !== "string") throw new Error("the relay's challenge is malformed");
	const wire = await ic.loginEnvelope(state.ident, c.relay, c.nonce);
	let s;
	try {
		s = await api("POST", "/api/login", wire);
	} catch (e) {
		// The relay takes a login signed within a minute of its own time.
		if (Math.abs(state.skewMs) > 30000)
			e.message += ` (this computer's clock is ${Math.round(Math.abs(state.skewMs) / 1000)} s ` +
				`${state.skewMs > 0 ? "behind" : "ahead of"} the relay's: set it right and sign in again)`;
		throw e;
	}
	if (typeof s.token !== "string" || !/^[0-9a-f]{64}$/.test(s.token)) throw new Error("the relay's answer has no token");
	if (s.doctor !== state.ident.cert.name) throw new Error(`the relay signed in ${s.doctor}, not ${state.ident.cert.name}`);
	state.token = s.token;
	state.relay = c.relay;
}

function refuse(key, what, why) {
	const p = state.refused.get(key) || { what, count: 0, why };
	p.count++;
	p.why = why;
	state.refused.set(key, p);
}

function kitOf(streamHex) {
	const st = state.streams.get(streamHex);
	return st ? st.s.kit : `stream ${streamHex}`;
}

// New grants: unwrap each stream's root once.
async function refreshStreams() {
	const { streams } = await api("GET", "/api/streams");
	if (!Array.isArray(streams)) throw new Error("the relay's stream list is malformed");
	for (const g of streams) {
		if (!g || typeof g.stream !== "string" || state.streams.has(g.stream) || state.refused.has(`grant ${g.stream}`))
			continue;
		try {
			const grant = await ic.unwrapGrant(state.ident, g.wrapped, g.stream);
			state.streams.set(g.stream, { s: new ic.Stream(grant), after: 0, seen: new Set() });
		} catch (e) {
			refuse(`grant ${g.stream}`, `the grant of stream ${g.stream}`, e.message);
		}
	}
}

function acked(kit) {
	return Number(localStorage.getItem(ACKED_KEY + kit) || 0);
}

// Every reading of a stream after seq `after`, a page at a time; each seq opened once.
async function pullStream(hexId, st, after, out) {
	for (;;) {
		const from = after;
		const { readings } = await api("GET", `/api/history?stream=${hexId}&after=${from}&max=${HISTORY_MAX}`);
		if (!Array.isArray(readings)) throw new Error("the relay's history is malformed");
		for (const r of readings) {
			if (!r || !Number.isSafeInteger(r.seq) || r.seq <= after) {
				refuse(hexId, `${st.s.kit}'s readings (stream ${hexId})`, "the relay's seq is out of order");
				continue;
			}
			after = r.seq;
			st.after = Math.max(st.after, r.seq);
			if (st.seen.has(r.seq)) continue;
			try {
				const o = await ic.openReading(st.s, ic.b64decode(r.data));
				if (o.header.seq !== r.seq) throw new ic.FormatError("the relay's seq is not the reading's");
				st.seen.add(r.seq);
				out.push({ kit: st.s.kit, ...o });
				if (o.value.emergency && o.header.seq > acked(st.s.kit)) {
					const list = state.emergencies.get(st.s.kit) || [];
					if (!list.some((x) => x.header.seq === o.header.seq)) list.push({ kit: st.s.kit, ...o });
					state.emergencies.set(st.s.kit, list);
				}
			} catch (e) {
				refuse(hexId, `${st.s.kit}'s readings (stream ${hexId})`, e.message);
			}
		}
		// A full page asks for the next; one that moved nothing on would ask forever.
		if (readings.length < HISTORY_MAX || after === from) return;
	}
}

// The expired rows: GET /api/fetch answers with them and does not take anything off the queue
// (only POST /api/delivered does); max=1 keeps the answer small.
async function refreshExpired() {
	const f = await api("GET", "/api/fetch?max=1");
	state.expired = Array.isArray(f.expired) ? f.expired.filter((e) => e && typeof e.stream === "string") : [];
}

function render() {
	const list = [...state.emergencies.values()].flat().sort((a, b) => b.header.timeMs - a.header.timeMs);
	view.emergencies(list, acknowledge, state.acking);
	view.expired(state.expired, kitOf);
	view.problems([...state.refused.values()]);
}

async function poll() {
	const gen = state.generation;
	try {
		await refreshStreams();
		const opened = [];
		const rescan = state.polls++ % RESCAN_POLLS === RESCAN_POLLS - 1;
		for (const [hexId, st] of state.streams)
			await pullStream(hexId, st, rescan ? Math.max(0, st.after - RESCAN_BACK) : st.after, opened);
		await refreshExpired();
		if (gen !== state.generation) return;
		view.plot(opened);
		render();
		view.error("");
		view.status(`Signed in to ${state.relay} as ${state.ident.cert.name}: ${state.streams.size} ` +
			`stream${state.streams.size === 1 ? "" : "s"}.`);
		view.updated(Date.now());
	} catch (e) {
		if (gen !== state.generation) return;
		view.error(`Could not update: ${e.message}. Trying again.`);
	}
	if (gen === state.generation) state.timer = setTimeout(poll, POLL_MS);
}

// EMERGENCY_ACK {"kit":K,"seq":N}, signed here, unicast to the kit, through the relay.
async function acknowledge(kit, seq) {
	state.acking.add(kit);
	render();
	try {
		const wire = await ic.ackEnvelope(state.ident, kit, seq);
		await api("POST", "/api/ack", JSON.stringify({ envelope: wire }));
		localStorage.setItem(ACKED_KEY + kit, String(Math.max(seq, acked(kit))));
		state.emergencies.set(kit, (state.emergencies.get(kit) || []).filter((r) => r.header.seq > seq));
		view.status(`Acknowledged ${kit}'s emergencies up to seq ${seq}.`);
	} catch (e) {
		view.error(`The acknowledgement for ${kit} did not go: ${e.message}`);
	} finally {
		state.acking.delete(kit);
		render();
	}
}

function readFile(input) {
	const f = input.files && input.files[0];
	if (!f) throw new Error(`choose the file for "${input.labels[0].textContent}"`);
	return f.text();
}

async function signIn(ev) {
	ev.preventDefault();
	const keyInput = document.getElementById("key-file");
	const certInput = document.getElementById("cert-file");
	const button = document.getElementById("sign-in");
	button.disabled = true;
	view.error("");
	try {
		view.status("Reading your key…");
		let keyPem = await readFile(keyInput);
		const certPem = await readFile(certInput);
		try {
			state.ident = await ic.loadIdentity(keyPem, certPem);
		} finally {
			keyPem = null; // only the non-extractable CryptoKeys remain
			keyInput.value = "";
		}
		view.status("Signing in…");
		await login();
		view.show("login", false);
		view.show("session", true);
		view.show("patients", true);
		document.getElementById("who").textContent =
			`${state.ident.cert.name} (home ${state.ident.cert.home}), at relay ${state.relay}`;
		view.status("Fetching your patients' readings…");
		await poll();
	} catch (e) {
		state.ident = null;
		state.token = null;
		view.error(`Could not sign in: ${e.message}`);
		view.status("Not signed in.");
	} finally {
		button.disabled = false;
	}
}

// Forget everything: the keys, the roots, the token, the charts.
function signOut() {
	state.generation++;
	clearTimeout(state.timer);
	for (const st of state.streams.values()) st.s.forget();
	Object.assign(state, { ident: null, token: null, relay: "", expired: [] });
	for (const m of [state.streams, state.refused, state.emergencies]) m.clear();
	state.acking.clear();
	view.reset();
	document.getElementById("cert-file").value = "";
	view.show("session", false);
	view.show("login", true);
	view.status("Signed out: the key and the roots are forgotten.");
}

document.getElementById("login-form").addEventListener("submit", signIn);
document.getElementById("sign-out").addEventListener("click", signOut);
if (!globalThis.crypto || !globalThis.crypto.subtle) {
	view.error("This browser has no WebCrypto here: open the page over HTTPS.");
	document.getElementById("sign-in").disabled = true;
}
view.status(window.Chart ? "Not signed in." : "The chart library did not load.");
