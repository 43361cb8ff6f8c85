// The doctor's page end to end in Chromium (headless, through playwright-core): sign in with the
// doctor's files, wait for the charts, check that they show exactly the expected readings, and
// that no request the browser made carries the key, a root or a reading in the clear.
//
//   node tests/web/page.test.mjs --url https://relay:8443/ --key doctor.key --cert doctor.crt \
//       --expect expected.json [--secrets secrets.json] [--screenshot page.png] [--ack KIT:SEQ]
//       [--timeout SECONDS] [--chromium /usr/bin/chromium]
//
// Each option may instead come from the environment: PAGE_URL, PAGE_KEY, PAGE_CERT,
// PAGE_EXPECT, PAGE_SECRETS, PAGE_SCREENSHOT, PAGE_ACK, PAGE_TIMEOUT, CHROMIUM.
//   expected.json  [{"kit":"kit1","sensor":"pulse","time_ms":T,"value":72,"emergency":false}, ...]
//                  every reading the page should chart, no more, no less
//   secrets.json   {"roots":["<b64>",...],"plaintexts":["{\"sensor\":...}",...]}: each root and
//                  each reading's plaintext JSON, to be found in no request, as they are, in hex
//                  or in base64 at any alignment (inside a signed envelope's "msg", say); the
//                  key's private parts are always looked for, in its PEM, DER and base64 forms
//   --ack KIT:SEQ  press that emergency's Acknowledge button; the relay must take the EMERGENCY_ACK
//                  and the emergency leave the list
// playwright-core is found in tests/web/node_modules, or in $PLAYWRIGHT_MODULES (a node_modules
// folder: tests/web/page-test.sh installs it with npm ci into build/npm/tests-web).
// Exit 0 when every check held, 1 otherwise (each failure said on stderr), 2 for a bad command line.
import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const OPTS = {
	url: "PAGE_URL", key: "PAGE_KEY", cert: "PAGE_CERT", expect: "PAGE_EXPECT", secrets: "PAGE_SECRETS",
	screenshot: "PAGE_SCREENSHOT", ack: "PAGE_ACK", timeout: "PAGE_TIMEOUT", chromium: "CHROMIUM",
};

function usage(msg) {
	console.error(`page.test.mjs: ${msg}\nusage: node page.test.mjs --url URL --key FILE --cert FILE --expect FILE ` +
		"[--secrets FILE] [--screenshot FILE] [--ack KIT:SEQ] [--timeout SECONDS] [--chromium PATH]");
	process.exit(2);
}

function args() {
	const o = {};
	for (const [k, e] of Object.entries(OPTS)) if (process.env[e]) o[k] = process.env[e];
	const a = process.argv.slice(2);
	for (let i = 0; i < a.length; i++) {
		const k = a[i].replace(/^--/, "");
		if (!a[i].startsWith("--") || !(k in OPTS)) usage(`unknown argument '${a[i]}'`);
		if (i + 1 >= a.length) usage(`${a[i]} needs a value`);
		o[k] = a[++i];
	}
	for (const k of ["url", "key", "cert", "expect"]) if (!o[k]) usage(`--${k} is required`);
	o.timeout = Number(o.timeout || 60) * 1000;
	o.chromium = o.chromium || "/usr/bin/chromium";
	return o;
}

const o = args();
const failures = [];
const fail = (msg) => {
	failures.push(msg);
	console.error(`FAIL: ${msg}`);
};
const say = (msg) => console.log(`== ${msg}`);

const modules = process.env.PLAYWRIGHT_MODULES || join(HERE, "node_modules");
const { chromium } = createRequire(join(modules, "noop.js"))("playwright-core");

// What must never leave the browser, as text to look for in URLs, headers and bodies. The key
// is looked for by its private parts (d, p, q and the CRT values), in base64 at each of the
// three byte alignments a longer blob (its PEM, its DER, PKCS#1 or PKCS#8) would put them, in
// base64url and in hex: its public half (the modulus) is in the certificate, which does travel.
// The base64 and base64url text bytes take inside any longer blob: one for each of the three
// byte alignments, each cut short of its last group (which the bytes after it change).
function b64Inner(bytes) {
	const out = [];
	for (let a = 0; a < 3; a++) {
		const b = bytes.subarray(a);
		const n = Math.floor(b.length / 3) * 4 - 4;
		if (n >= 8) out.push(b.toString("base64").slice(0, n), b.toString("base64url").slice(0, n));
	}
	return out;
}

function needles() {
	const out = [["a PEM private key", "PRIVATE KEY-----"]];
	const key = createPrivateKey(readFileSync(o.key, "utf8"));
	const jwk = key.export({ format: "jwk" });
	// Pieces of 32 characters: a key cut up or re-wrapped is still found.
	const pieces = (label, text) => {
		for (let i = 0; i + 32 <= text.length; i += 32) out.push([label, text.slice(i, i + 32)]);
	};
	for (const p of ["d", "p", "q", "dp", "dq", "qi"]) {
		const raw = Buffer.from(jwk[p], "base64url");
		for (const t of b64Inner(raw)) pieces(`the key's ${p} (base64)`, t);
		pieces(`the key's ${p} (hex)`, raw.toString("hex"));
	}
	if (o.secrets) {
		const s = JSON.parse(readFileSync(o.secrets, "utf8"));
		for (const r of s.roots || []) {
			const raw = Buffer.from(r, "base64");
			out.push(["a root (hex)", raw.toString("hex")]);
			for (const t of b64Inner(raw)) out.push(["a root (base64)", t]);
		}
		for (const t of s.plaintexts || []) {
			out.push(["a reading's plaintext", t]);
			for (const b of b64Inner(Buffer.from(t))) out.push(["a reading's plaintext (base64)", b]);
		}
	}
	return out;
}

async function main() {
	const expected = JSON.parse(readFileSync(o.expect, "utf8"));
	const look = needles();
	const requests = [];
	const browser = await chromium.launch({ executablePath: o.chromium, headless: true });
	try {
		const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 1000 } });
		const page = await context.newPage();
		page.on("request", (r) => requests.push(r));
		page.on("console", (m) => {
			if (m.type() === "error") fail(`the page's console: ${m.text()}`);
		});
		page.on("pageerror", (e) => fail(`the page threw: ${e.message}`));

		say(`load ${o.url}`);
		await page.goto(o.url, { waitUntil: "load" });
		await page.waitForFunction(() => !!window.Chart, null, { timeout: 10000 });

		say("sign in with the doctor's files");
		await page.setInputFiles("#key-file", o.key);
		await page.setInputFiles("#cert-file", o.cert);
		await page.click("#sign-in");
		await page.waitForSelector("#session:not([hidden])", { timeout: 15000 }).catch(async () => {
			throw new Error(`not signed in: ${await page.textContent("#error")}`);
		});

		say(`wait for ${expected.length} readings on the charts`);
		const charted = () =>
			page.evaluate(() =>
				[...document.querySelectorAll("canvas[data-kit]")].flatMap((c) =>
					window.Chart.getChart(c).data.datasets[0].data.map((p) => ({
						kit: c.dataset.kit, sensor: c.dataset.sensor, time_ms: p.x, value: p.y, emergency: p.emergency,
					}))));
		const deadline = Date.now() + o.timeout;
		let got = [];
		while (Date.now() < deadline) {
			got = await charted();
			if (got.length >= expected.length) break;
			await page.waitForTimeout(500);
		}
		const key = (r) => `${r.kit} ${r.sensor} ${r.time_ms} ${r.value} ${!!r.emergency}`;
		const want = expected.map(key).sort();
		const have = got.map(key).sort();
		for (const w of want) if (!have.includes(w)) fail(`not charted: ${w}`);
		for (const h of have) if (!want.includes(h)) fail(`charted but not expected: ${h}`);
		if (have.length !== new Set(have).size) fail("a reading is charted twice");
		const kits = new Set(expected.map((r) => r.kit));
		const sections = await page.$$eval("section.patient h3", (hs) => hs.map((h) => h.textContent));
		if (sections.sort().join() !== [...kits].sort().join()) fail(`patients shown: ${sections}, not ${[...kits]}`);
		const problems = await page.textContent("#problem-list");
		if (problems) fail(`the page could not open some readings: ${problems}`);

		const emergencies = expected.filter((r) => r.emergency);
		const shown = await page.$$eval("#emergency-list li", (li) => li.length);
		if (emergencies.length > 0 && shown === 0) fail("emergencies expected, none at the top of the page");

		if (o.screenshot) {
			await page.screenshot({ path: o.screenshot, fullPage: true });
			say(`screenshot in ${o.screenshot}`);
		}

		if (o.ack) {
			const [kit, seq] = o.ack.split(":");
			say(`acknowledge ${kit}'s emergency of seq ${seq}`);
			const label = `Acknowledge ${kit}'s emergencies up to seq ${seq}`;
			const button = page.getByRole("button", { name: label });
			if ((await button.count()) !== 1) fail(`no button "${label}"`);
			else {
				const [r] = await Promise.all([
					page.waitForResponse((x) => new URL(x.url()).pathname === "/api/ack", { timeout: 15000 }),
					button.click({ timeout: 5000 }),
				]);
				if (!r.ok()) fail(`POST /api/ack: ${r.status()} ${await r.text()}`);
				await button.waitFor({ state: "detached", timeout: 5000 })
					.catch(() => fail("the emergency stayed after its acknowledgement"));
			}
		}

		say(`look through the ${requests.length} requests the browser made`);
		const origin = new URL(o.url).origin;
		for (const r of requests) {
			if (new URL(r.url()).origin !== origin) fail(`a request to another host: ${r.url()}`);
			let text = `${r.method()} ${r.url()}\n${JSON.stringify(await r.allHeaders())}\n${r.postData() || ""}`;
			try {
				text += `\n${decodeURIComponent(text)}`;
			} catch {
				// Not URL-encoded: the text as it is.
			}
			for (const [what, n] of look)
				if (text.includes(n)) {
					fail(`${what} in ${r.method()} ${r.url()}`);
					break;
				}
		}
		const posts = requests.filter((r) => r.method() === "POST").map((r) => new URL(r.url()).pathname);
		if (!posts.includes("/api/login")) fail("no POST /api/login seen");
	} finally {
		await browser.close();
	}
}

main().then(
	() => {
		console.log(failures.length ? `${failures.length} check(s) failed` : "ok");
		process.exit(failures.length ? 1 : 0);
	},
	(e) => {
		console.error(`FAIL: ${e.message}`);
		process.exit(1);
	},
);
