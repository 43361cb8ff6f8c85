// The page's crypto module (web/iotsec.js) in node, against vectors the C code accepted
// (tests/web/vectors.py, opened by iotsec-doctor read first) and the doctor's real key files.
//   VECTORS=vectors.json KEY=doctor.key CERT=doctor.crt OTHER_KEY=kit1.key OTHER_CERT=kit1.crt
//   ENVELOPES_OUT=file RELAY=relay1 node --test tests/web/crypto.test.mjs
// It writes the envelopes it builds to ENVELOPES_OUT, a line each, for the C side to open:
//   a RELAY_LOGIN to RELAY, an EMERGENCY_ACK to kit1, then the same ack with one byte of its
//   signed text changed (which must be refused).
import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";

// Node 18 has WebCrypto without the global.
if (!globalThis.crypto) globalThis.crypto = webcrypto;

const m = await import(new URL("../../web/iotsec.js", import.meta.url));
const env = (k) => {
	if (!process.env[k]) throw new Error(`${k} is not set (see the head of this file)`);
	return process.env[k];
};
const V = JSON.parse(readFileSync(env("VECTORS"), "utf8"));
const keyPem = readFileSync(env("KEY"), "utf8");
const certPem = readFileSync(env("CERT"), "utf8");
const ident = await m.loadIdentity(keyPem, certPem);

test("the doctor's key loads from its PEM (PKCS#8), and cannot be read back", async () => {
	assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----/);
	assert.equal(ident.cert.name, "drlee");
	assert.equal(ident.cert.home, "testhome");
	assert.equal(ident.signKey.extractable, false);
	assert.equal(ident.unwrapKey.extractable, false);
	await assert.rejects(globalThis.crypto.subtle.exportKey("pkcs8", ident.signKey));
	await assert.rejects(globalThis.crypto.subtle.exportKey("jwk", ident.unwrapKey));
});

test("a key that is not the certificate's, or no key at all, is refused", async () => {
	const other = readFileSync(env("OTHER_KEY"), "utf8");
	await assert.rejects(m.loadIdentity(other, certPem), /not the certificate's/);
	await assert.rejects(m.loadIdentity(certPem, certPem), /no PEM private key/);
	await assert.rejects(m.loadIdentity(keyPem, keyPem), /no "CERTIFICATE" PEM block/);
	await assert.rejects(m.loadIdentity("-----BEGIN ENCRYPTED PRIVATE KEY-----\n", certPem), /encrypted/);
	const lines = keyPem.split("\n");
	const cut = [...lines.slice(0, 3), ...lines.slice(4)].join("\n");
	assert.notEqual(cut, keyPem);
	await assert.rejects(m.loadIdentity(cut, certPem), m.FormatError);
});

test("a PKCS#1 key (BEGIN RSA PRIVATE KEY) loads as well", async () => {
	const { createPrivateKey } = await import("node:crypto");
	const pkcs1 = createPrivateKey(keyPem).export({ type: "pkcs1", format: "pem" });
	const id2 = await m.loadIdentity(pkcs1, certPem);
	assert.equal(id2.cert.name, "drlee");
});

test("stream keys: the HKDF chain from the root, and the stream id", async () => {
	for (const s of V.streams) {
		const g = await m.unwrapGrant(ident, s.wrapped, s.stream);
		assert.equal(g.kit, s.kit);
		assert.equal(g.start, s.start);
		assert.equal(m.b64encode(g.root), s.root);
		assert.equal(g.id, s.stream);
		const st = new m.Stream(g);
		// Forward, then back to an earlier epoch (recomputed from the root).
		for (const e of Object.keys(s.keys).map(Number).sort((a, b) => a - b))
			assert.equal(m.hex(await st.keyAt(e)), s.keys[e], `epoch ${e}`);
		assert.equal(m.hex(await st.keyAt(s.start)), s.keys[s.start]);
		await assert.rejects(st.keyAt(s.start - 1), /outside this stream/);
		await assert.rejects(st.keyAt(s.start + (1 << 24)), /outside this stream/);
	}
});

test("wrapped roots that are wrong are refused", async () => {
	for (const b of V.bad_wrapped)
		await assert.rejects(m.unwrapGrant(ident, b.wrapped, b.stream), m.FormatError, b.why);
});

async function streams() {
	const out = {};
	for (const s of V.streams) out[s.stream] = new m.Stream(await m.unwrapGrant(ident, s.wrapped, s.stream));
	return out;
}

test("sealed readings the C opened open here to the same values", async () => {
	const ss = await streams();
	assert.ok(V.good.length >= 5);
	for (const g of V.good) {
		const r = await m.openReading(ss[g.stream], m.unhex(g.hex));
		assert.equal(r.header.device, "kit1");
		assert.equal(r.header.stream, g.stream);
		assert.equal(r.header.epoch, g.epoch);
		assert.equal(r.header.seq, g.seq);
		assert.equal(r.header.timeMs, g.time_ms);
		assert.deepEqual(r.value, g.value);
	}
});

test("bad readings are refused, each for its reason", async () => {
	const ss = await streams();
	assert.ok(V.bad.length >= 10);
	for (const b of V.bad) {
		let bytes;
		try {
			bytes = m.unhex(b.hex);
		} catch (e) {
			assert.ok(e instanceof m.FormatError, b.why);
			continue;
		}
		await assert.rejects(m.openReading(ss[b.stream], bytes), m.FormatError, b.why);
	}
});

test("the header alone parses as the relay sees it", () => {
	const g = V.good[0];
	const h = m.readingHeaderParse(m.unhex(g.hex));
	assert.equal(h.kind, m.READING_DOCTOR);
	assert.equal(h.flags, 0);
	assert.equal(h.headerLen, m.READING_HEADER_FIXED + 4);
	assert.throws(() => m.readingHeaderParse(new Uint8Array(m.READING_MAX + 1)), /longer/);
	assert.throws(() => m.readingHeaderParse(new Uint8Array(3)), /truncated/);
});

test("values: strict, as reading_value_parse()", () => {
	const good = '{"sensor":"pulse","value":72,"unit":"/min"}';
	assert.deepEqual(m.readingValueParse(good), { sensor: "pulse", value: 72, unit: "/min", emergency: false });
	for (const bad of [
		"",
		"[]",
		"null",
		'{"sensor":"pulse","value":72}',
		'{"sensor":"Pulse","value":72,"unit":"/min"}',
		'{"sensor":"pulse","value":72,"unit":"/min","emergency":true}',
		'{"sensor":"pulse","value":72,"unit":"/min","emergency":false,"threshold":3}',
		'{"sensor":"pulse","value":72,"unit":"0123456789abcdef"}',
		'{"sensor":"pulse","value":true,"unit":"/min"}',
	])
		assert.throws(() => m.readingValueParse(bad), m.FormatError, bad);
});

test("envelopes: RELAY_LOGIN and EMERGENCY_ACK in envelope_seal()'s exact form", async () => {
	const relay = env("RELAY");
	const nonce = "0123456789abcdef0123456789abcdef";
	const login = await m.loginEnvelope(ident, relay, nonce);
	const ack = await m.ackEnvelope(ident, "kit1", 42);
	for (const [wire, type, to, body] of [
		[login, "RELAY_LOGIN", relay, {}],
		[ack, "EMERGENCY_ACK", "kit1", { kit: "kit1", seq: 42 }],
	]) {
		assert.match(wire, /^\{"v":2,"msg":"[A-Za-z0-9+/=]+","sig":"[A-Za-z0-9+/=]+","cert":"[A-Za-z0-9+/=]+"\}$/);
		const o = JSON.parse(wire);
		const inner = JSON.parse(Buffer.from(o.msg, "base64").toString());
		assert.deepEqual(Object.keys(inner), ["type", "from", "home", "ts", "seq", "nonce", "body", "to", "id"]);
		assert.equal(inner.type, type);
		assert.equal(inner.from, "drlee");
		assert.equal(inner.home, "testhome");
		assert.equal(inner.to, to);
		assert.deepEqual(inner.body, body);
		assert.equal(Buffer.from(inner.nonce, "base64").length, 16);
		assert.ok(Math.abs(inner.ts - Date.now() / 1000) < 5);
		assert.equal(Buffer.from(o.cert, "base64").toString("base64"), m.b64encode(ident.cert.der));
		assert.equal(Buffer.from(o.sig, "base64").length, 256);
		// Nothing of the key travels: its base64 is nowhere in the envelope.
		const keyB64 = keyPem.replace(/-----[^-]+-----|\s/g, "");
		for (let i = 0; i + 40 <= keyB64.length; i += 40) assert.ok(!wire.includes(keyB64.slice(i, i + 40)));
	}
	assert.equal(JSON.parse(Buffer.from(JSON.parse(login).msg, "base64")).id, nonce);
	const a = JSON.parse(Buffer.from(JSON.parse(ack).msg, "base64"));
	assert.match(a.id, /^[0-9a-f]{32}$/);
	// Sequence numbers only go up, even within one millisecond.
	const s1 = JSON.parse(Buffer.from(JSON.parse(login).msg, "base64")).seq;
	assert.ok(a.seq > s1);
	await assert.rejects(m.sealEnvelope(ident, "RELAY_LOGIN", {}, relay, "bad id!"));
	// One byte of the signed text changed: the signature no longer holds.
	const o = JSON.parse(ack);
	const msg = Buffer.from(o.msg, "base64").toString().replace('"seq":42', '"seq":43');
	const forged = `{"v":2,"msg":"${Buffer.from(msg).toString("base64")}","sig":"${o.sig}","cert":"${o.cert}"}`;
	writeFileSync(env("ENVELOPES_OUT"), [login, ack, forged].join("\n") + "\n");
});
