// The doctor's side of the formats (SPEC 4, 8, 9), in WebCrypto, for the page and for node's
// tests alike: no DOM here. What it implements, and where the C does the same:
//   the signed envelope            libiotsec/envelope.h (RSA-PSS-SHA256, MGF1-SHA256, salt 32)
//   the stream keys and stream id  libiotsec/stream.h (HKDF-SHA256 chain, HMAC-SHA256 id)
//   the sealed reading             libiotsec/reading.h (AES-256-GCM, the header as AAD)
//   the relay's "wrapped" root     daemons/relayd/relayd.h (RSA-OAEP-SHA256 of
//                                  {"kit":K,"start":e0,"root":"<b64>"} to the doctor's key)
// The private key is imported non-extractable: once loaded, not even this code can read it
// back, so nothing built here can carry it to the relay. Roots and stream keys stay in memory.

const subtle = () => globalThis.crypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export const READING_VERSION = 1;
export const READING_DOCTOR = 2;
export const READING_F_EMERGENCY = 0x01;
export const STREAM_ID_LEN = 16;
export const NONCE_LEN = 12;
export const TAG_LEN = 16;
export const KEY_LEN = 32;
export const READING_NAME_MAX = 63;
export const READING_SENSOR_MAX = 31;
export const READING_UNIT_MAX = 15;
export const READING_PLAIN_MAX = 256;
export const READING_HEADER_FIXED = 4 + STREAM_ID_LEN + 4 + 8 + 8 + NONCE_LEN;
export const READING_MAX = READING_HEADER_FIXED + READING_NAME_MAX + READING_PLAIN_MAX + TAG_LEN;
export const STREAM_ADVANCE_MAX = 1 << 24;
export const PSS_SALT_LEN = 32; // libiotsec/crypto.c CRYPTO_PSS_SALT_LEN
export const ENVELOPE_VERSION = 2;
export const ENVELOPE_ID_MAX = 32;
const STREAM_SALT = enc.encode("iotsec stream v1");
const STREAM_ID_LABEL = enc.encode("iotsec stream id v1");

// Every refusal is one of these, so that the page can say which check failed.
export class FormatError extends Error {}

// --- Encodings -------------------------------------------------------------------------------

export function b64encode(bytes) {
	let s = "";
	for (let i = 0; i < bytes.length; i += 0x8000)
		s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
	return btoa(s);
}

// Strict: only the standard alphabet with its padding, as encoding.h writes it.
export function b64decode(text) {
	if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text))
		throw new FormatError("not base64");
	let bin;
	try {
		bin = atob(text);
	} catch {
		throw new FormatError("not base64");
	}
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

export function hex(bytes) {
	return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function unhex(text) {
	if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-f]*$/.test(text))
		throw new FormatError("not lower-case hex");
	const out = new Uint8Array(text.length / 2);
	for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
	return out;
}

function equalBytes(a, b) {
	if (a.length !== b.length) return false;
	let d = 0;
	for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
	return d === 0;
}

export function wipe(bytes) {
	if (bytes) bytes.fill(0);
}

// --- PEM and the little DER we read ----------------------------------------------------------

// The DER of the one PEM block labelled label in text (the first when there are several).
export function pemDecode(text, label) {
	const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*)-----END ${label}-----`);
	const m = re.exec(text);
	if (!m) throw new FormatError(`no "${label}" PEM block`);
	return b64decode(m[1].replace(/\s+/g, ""));
}

// One DER element at off: {tag, start (of the contents), end}.
function derAt(buf, off, end = buf.length) {
	if (off + 2 > end) throw new FormatError("DER truncated");
	const tag = buf[off];
	let len = buf[off + 1];
	let p = off + 2;
	if (len & 0x80) {
		const n = len & 0x7f;
		if (n < 1 || n > 3 || p + n > end) throw new FormatError("DER length");
		len = 0;
		for (let i = 0; i < n; i++) len = len * 256 + buf[p++];
	}
	if (p + len > end) throw new FormatError("DER truncated");
	return { tag, start: p, end: p + len, off };
}

// The elements inside a constructed element.
function derChildren(buf, el) {
	const out = [];
	for (let p = el.start; p < el.end; ) {
		const c = derAt(buf, p, el.end);
		out.push(c);
		p = c.end;
	}
	return out;
}

const OID_CN = "550403"; // 2.5.4.3
const OID_O = "55040a"; // 2.5.4.10
const OID_RSA = "2a864886f70d010101"; // 1.2.840.113549.1.1.1

// What the page needs of a certificate: its DER, the subject's CN (the device name) and O (the
// home), as cert.c reads them, and its public key (SubjectPublicKeyInfo).
export function certParse(der) {
	const cert = derAt(der, 0);
	if (cert.tag !== 0x30 || cert.end !== der.length) throw new FormatError("not a certificate");
	const [tbs] = derChildren(der, cert);
	const f = derChildren(der, tbs);
	// tbsCertificate: [0] version, serial, signature, issuer, validity, subject, spki, ...
	const i = f[0] && f[0].tag === 0xa0 ? 1 : 0;
	const subject = f[i + 4],
		spki = f[i + 5];
	if (!subject || subject.tag !== 0x30 || !spki || spki.tag !== 0x30)
		throw new FormatError("not a certificate");
	const names = {};
	for (const rdn of derChildren(der, subject))
		for (const atv of derChildren(der, rdn)) {
			const [oid, val] = derChildren(der, atv);
			if (oid.tag !== 0x06 || !val) continue;
			names[hex(der.subarray(oid.start, oid.end))] = dec.decode(der.subarray(val.start, val.end));
		}
	if (!names[OID_CN] || !names[OID_O]) throw new FormatError("certificate without CN or O");
	return {
		der,
		name: names[OID_CN],
		home: names[OID_O],
		spki: der.slice(spki.off, spki.end),
	};
}

// PKCS#1 RSAPrivateKey inside a PKCS#8 PrivateKeyInfo, for a key file in the older form.
function pkcs1ToPkcs8(pkcs1) {
	const lenBytes = (n) =>
		n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 255] : [0x83, n >> 16, (n >> 8) & 255, n & 255];
	const tlv = (tag, body) => Uint8Array.from([tag, ...lenBytes(body.length), ...body]);
	const alg = unhex("300d06092a864886f70d0101010500");
	const body = Uint8Array.from([...unhex("020100"), ...alg, ...tlv(0x04, pkcs1)]);
	return tlv(0x30, body);
}

// --- The doctor's identity -------------------------------------------------------------------

// Load the doctor's key (PEM: PKCS#8 "PRIVATE KEY" as iotsec-pki and iotsec-doctor write it,
// or PKCS#1 "RSA PRIVATE KEY") and certificate (PEM) as two non-extractable keys, one to sign
// envelopes and one to unwrap roots; check that the key is the certificate's.
export async function loadIdentity(keyPem, certPem) {
	let der;
	if (/-----BEGIN PRIVATE KEY-----/.test(keyPem)) der = pemDecode(keyPem, "PRIVATE KEY");
	else if (/-----BEGIN RSA PRIVATE KEY-----/.test(keyPem))
		der = pkcs1ToPkcs8(pemDecode(keyPem, "RSA PRIVATE KEY"));
	else if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(keyPem))
		throw new FormatError("the key file is encrypted: give the unencrypted doctor.key");
	else throw new FormatError("the key file holds no PEM private key");
	const cert = certParse(pemDecode(certPem, "CERTIFICATE"));
	let signKey, unwrapKey, pub;
	try {
		signKey = await subtle().importKey("pkcs8", der, { name: "RSA-PSS", hash: "SHA-256" }, false, ["sign"]);
		unwrapKey = await subtle().importKey("pkcs8", der, { name: "RSA-OAEP", hash: "SHA-256" }, false, ["decrypt"]);
		pub = await subtle().importKey("spki", cert.spki, { name: "RSA-PSS", hash: "SHA-256" }, false, ["verify"]);
	} catch (e) {
		throw new FormatError(`not an RSA key and certificate (${e.message})`);
	} finally {
		wipe(der);
	}
	const probe = enc.encode("iotsec: is this the certificate's key?");
	const sig = await subtle().sign({ name: "RSA-PSS", saltLength: PSS_SALT_LEN }, signKey, probe);
	if (!(await subtle().verify({ name: "RSA-PSS", saltLength: PSS_SALT_LEN }, pub, sig, probe)))
		throw new FormatError("the key is not the certificate's");
	return { signKey, unwrapKey, cert, lastSeq: 0 };
}

// --- Envelopes (envelope.h) ------------------------------------------------------------------

// A delivery id: 32 hex characters (id_valid() takes letters, digits, - and _).
export function newId() {
	return hex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

// Seal a message as envelope_seal() does: the signed text with its fields in this order,
// {"type","from","home","ts","seq","nonce","body"[,"to","id"]}, then the outer form with the
// full certificate. seq is microseconds, strictly increasing (well within 2^53).
export async function sealEnvelope(ident, type, body, to, id, now = Date.now()) {
	if ((to == null) !== (id == null)) throw new Error("a unicast message has both to and id");
	if (id != null && !/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new Error("bad delivery id");
	const seq = Math.max(ident.lastSeq + 1, now * 1000);
	ident.lastSeq = seq;
	const inner = {
		type,
		from: ident.cert.name,
		home: ident.cert.home,
		ts: Math.floor(now / 1000),
		seq,
		nonce: b64encode(globalThis.crypto.getRandomValues(new Uint8Array(16))),
		body: body ?? {},
	};
	if (to != null) {
		inner.to = to;
		inner.id = id;
	}
	const msg = enc.encode(JSON.stringify(inner));
	const sig = new Uint8Array(await subtle().sign({ name: "RSA-PSS", saltLength: PSS_SALT_LEN }, ident.signKey, msg));
	return `{"v":${ENVELOPE_VERSION},"msg":"${b64encode(msg)}","sig":"${b64encode(sig)}","cert":"${b64encode(ident.cert.der)}"}`;
}

export function loginEnvelope(ident, relay, nonce, now) {
	return sealEnvelope(ident, "RELAY_LOGIN", {}, relay, nonce, now);
}

export function ackEnvelope(ident, kit, seq, now) {
	return sealEnvelope(ident, "EMERGENCY_ACK", { kit, seq }, kit, newId(), now);
}

// --- Grants: the root the relay keeps wrapped to us ------------------------------------------

function isName(s, max = READING_NAME_MAX) {
	return typeof s === "string" && s.length >= 1 && s.length <= max && /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(s);
}

function isCount(n, min = 1, max = 0xffffffff) {
	return Number.isSafeInteger(n) && n >= min && n <= max;
}

// Unwrap a stream's "wrapped" with the doctor's key: {kit, start, root (32 bytes)}, strict.
// When streamHex is given, the root must name that stream (a relay cannot swap two streams'
// wrapped roots unnoticed).
export async function unwrapGrant(ident, wrappedB64, streamHex) {
	let plain;
	try {
		plain = new Uint8Array(await subtle().decrypt({ name: "RSA-OAEP" }, ident.unwrapKey, b64decode(wrappedB64)));
	} catch (e) {
		if (e instanceof FormatError) throw e;
		throw new FormatError("not wrapped to this doctor's key");
	}
	let o;
	try {
		o = JSON.parse(dec.decode(plain));
	} catch {
		throw new FormatError("the wrapped grant is not JSON");
	} finally {
		wipe(plain);
	}
	const keys = o && typeof o === "object" && !Array.isArray(o) ? Object.keys(o).sort().join() : "";
	if (keys !== "kit,root,start" || !isName(o.kit) || !isCount(o.start))
		throw new FormatError("the wrapped grant is not {kit, start, root}");
	const root = b64decode(o.root);
	if (root.length !== KEY_LEN) throw new FormatError("the wrapped root is not 32 bytes");
	const id = await streamId(root);
	if (streamHex !== undefined && hex(id) !== streamHex) {
		wipe(root);
		throw new FormatError("the wrapped root is not this stream's");
	}
	return { kit: o.kit, start: o.start, root, id: hex(id) };
}

// --- Stream keys (stream.h) ------------------------------------------------------------------

export async function hkdfSha256(salt, ikm, info, bytes = KEY_LEN) {
	const k = await subtle().importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
	return new Uint8Array(await subtle().deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, k, bytes * 8));
}

function be32(n) {
	const b = new Uint8Array(4);
	new DataView(b.buffer).setUint32(0, n);
	return b;
}

// K_e from K_{e-1}.
export function streamNextKey(prev, e) {
	return hkdfSha256(STREAM_SALT, prev, be32(e));
}

export async function streamId(root) {
	const k = await subtle().importKey("raw", root, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
	return new Uint8Array(await subtle().sign("HMAC", k, STREAM_ID_LABEL)).slice(0, STREAM_ID_LEN);
}

// A doctor's stream: the root (key of e0 - 1) and the last key computed, so that readings in
// order cost one HKDF per new epoch. keyAt(e) for e0 <= e <= e0 - 1 + STREAM_ADVANCE_MAX.
export class Stream {
	constructor(grant) {
		this.kit = grant.kit;
		this.start = grant.start;
		this.root = grant.root;
		this.id = grant.id;
		this.at = grant.start - 1;
		this.key = grant.root;
	}

	async keyAt(e) {
		if (!Number.isSafeInteger(e) || e < this.start || e - this.start >= STREAM_ADVANCE_MAX)
			throw new FormatError(`epoch ${e} is outside this stream (from ${this.start})`);
		let at = this.at,
			key = this.key;
		if (e < at) {
			at = this.start - 1;
			key = this.root;
		}
		while (at < e) {
			const next = await streamNextKey(key, ++at);
			if (key !== this.root) wipe(key);
			key = next;
		}
		if (this.key !== this.root && this.key !== key) wipe(this.key);
		this.at = at;
		this.key = key;
		return key;
	}

	forget() {
		if (this.key !== this.root) wipe(this.key);
		wipe(this.root);
	}
}

// --- Sealed readings (reading.h) -------------------------------------------------------------

// The clear header: what the relay sees too. headerLen is the AAD's length.
export function readingHeaderParse(buf) {
	if (!(buf instanceof Uint8Array)) throw new TypeError("a reading is bytes");
	if (buf.length > READING_MAX) throw new FormatError("longer than a reading");
	if (buf.length < 4) throw new FormatError("truncated");
	const n = buf[3];
	if (buf[0] !== READING_VERSION) throw new FormatError(`version ${buf[0]}`);
	if (buf[2] & ~READING_F_EMERGENCY) throw new FormatError(`unknown flags ${buf[2]}`);
	if (n < 1 || n > READING_NAME_MAX) throw new FormatError("bad device name length");
	const headerLen = READING_HEADER_FIXED + n;
	if (buf.length < headerLen + 1 + TAG_LEN) throw new FormatError("truncated");
	if (buf.length > headerLen + READING_PLAIN_MAX + TAG_LEN) throw new FormatError("longer than a reading");
	let device;
	try {
		device = dec.decode(buf.subarray(4, 4 + n));
	} catch {
		throw new FormatError("bad device name");
	}
	if (!isName(device)) throw new FormatError("bad device name");
	const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
	let o = 4 + n;
	const stream = hex(buf.subarray(o, o + STREAM_ID_LEN));
	o += STREAM_ID_LEN;
	const epoch = dv.getUint32(o);
	const seq = dv.getBigUint64(o + 4);
	const timeMs = dv.getBigInt64(o + 12);
	if (epoch < 1 || seq < 1n || timeMs < 0n) throw new FormatError("epoch, seq or time out of range");
	if (seq > BigInt(Number.MAX_SAFE_INTEGER) || timeMs > BigInt(Number.MAX_SAFE_INTEGER))
		throw new FormatError("seq or time beyond what this page counts");
	return {
		kind: buf[1],
		flags: buf[2],
		device,
		stream,
		epoch,
		seq: Number(seq),
		timeMs: Number(timeMs),
		nonce: buf.slice(o + 20, o + 20 + NONCE_LEN),
		headerLen,
	};
}

function finite(v) {
	return typeof v === "number" && Number.isFinite(v);
}

// The plaintext, as strictly as reading_value_parse(): exactly sensor, value, unit, and for an
// emergency record emergency:true and threshold, nothing else.
export function readingValueParse(text) {
	let o;
	try {
		o = JSON.parse(text);
	} catch {
		throw new FormatError("the value is not JSON");
	}
	if (!o || typeof o !== "object" || Array.isArray(o)) throw new FormatError("the value is not an object");
	const keys = Object.keys(o).sort().join();
	const emergency = keys === "emergency,sensor,threshold,unit,value";
	if (!emergency && keys !== "sensor,unit,value") throw new FormatError("the value's fields are wrong");
	if (typeof o.sensor !== "string" || !/^[a-z0-9_-]{1,31}$/.test(o.sensor) ||
		typeof o.unit !== "string" || !/^[\x20-\x7e]{0,15}$/.test(o.unit) ||
		!finite(o.value) || (emergency && (o.emergency !== true || !finite(o.threshold))))
		throw new FormatError("the value's fields are wrong");
	const v = { sensor: o.sensor, value: o.value, unit: o.unit, emergency };
	if (emergency) v.threshold = o.threshold;
	return v;
}

// Open one sealed reading of stream s: {header, value}. Refuses another stream's, another
// device's (the kit the grant names), another kind's, an epoch before the stream's start, a
// wrong tag, and a value whose emergency and the header's flag disagree.
export async function openReading(s, buf) {
	const h = readingHeaderParse(buf);
	if (h.kind !== READING_DOCTOR) throw new FormatError(`kind ${h.kind}, not a doctor reading`);
	if (h.stream !== s.id) throw new FormatError("of another stream");
	if (h.device !== s.kit) throw new FormatError(`sealed in the name of ${h.device}, not ${s.kit}`);
	const key = await s.keyAt(h.epoch);
	const aes = await subtle().importKey("raw", key, "AES-GCM", false, ["decrypt"]);
	let plain;
	try {
		plain = new Uint8Array(
			await subtle().decrypt(
				{ name: "AES-GCM", iv: h.nonce, additionalData: buf.subarray(0, h.headerLen), tagLength: 128 },
				aes,
				buf.subarray(h.headerLen),
			),
		);
	} catch {
		throw new FormatError("does not open (wrong key, or damaged)");
	}
	let text;
	try {
		text = dec.decode(plain);
	} catch {
		throw new FormatError("the value is not UTF-8");
	} finally {
		wipe(plain);
	}
	const value = readingValueParse(text);
	if (value.emergency !== ((h.flags & READING_F_EMERGENCY) !== 0))
		throw new FormatError("the emergency flag and the value disagree");
	return { header: h, value };
}

export { equalBytes };
