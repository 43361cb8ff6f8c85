// What the doctor sees: one section per patient (kit), one chart per sensor, emergencies at the
// top with their Acknowledge button, retention's removals, and what would not open. Only the
// DOM: app.js decides what is shown. Text goes in with textContent, never as markup.

const $ = (id) => document.getElementById(id);
const TABLE_ROWS = 50; // the newest readings listed under each chart
const COLOURS = { line: "#1f5fa8", emergency: "#b00020" };

export function el(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (k === "text") e.textContent = v;
		else if (k === "onclick") e.addEventListener("click", v);
		else e.setAttribute(k, v);
	}
	for (const c of children) e.append(c);
	return e;
}

export function show(id, on) {
	$(id).hidden = !on;
}

// The live region speaks only when its text changes: a poll that found nothing new is silent.
export function status(text) {
	if ($("status").textContent !== text) $("status").textContent = text;
}

export function updated(ms) {
	$("updated").textContent = `Updated ${new Date(ms).toLocaleTimeString()}.`;
}

// Replace a list's items only when they differ, so that a screen reader is not told the same
// emergency again at every poll.
function replaceItems(ul, items) {
	const text = items.map((li) => li.textContent).join("\n");
	if (ul.dataset.shown === text) return;
	ul.dataset.shown = text;
	ul.replaceChildren(...items);
}

export function error(text) {
	if ($("error").textContent !== (text || "")) $("error").textContent = text || "";
	$("error").hidden = !text;
}

export function fmtTime(ms) {
	return new Date(ms).toLocaleString(undefined, {
		year: "numeric", month: "short", day: "numeric",
		hour: "numeric", minute: "2-digit", second: "2-digit",
	});
}

function fmtValue(v, unit) {
	return `${v}${unit ? " " + unit : ""}`;
}

// One patient's section, made on first use. Patients are in name order.
function patientSection(kit) {
	const id = `patient-${kit}`;
	let sec = document.getElementById(id);
	if (sec) return sec;
	sec = el("section", { id, class: "patient", "aria-labelledby": `${id}-heading` },
		el("h3", { id: `${id}-heading`, text: kit }),
		el("div", { class: "charts" }));
	const list = $("patient-list");
	const after = [...list.children].find((s) => s.querySelector("h3").textContent > kit);
	list.insertBefore(sec, after || null);
	return sec;
}

// A time on the x axis: the date too when the chart spans more than a day.
function tick(v) {
	const d = new Date(v);
	return this.max - this.min > 86400000 ? `${d.toLocaleDateString()} ${d.toLocaleTimeString()}` : d.toLocaleTimeString();
}

// The charts: key "kit\u0000sensor" -> {chart, points, unit, figure, table, canvas}.
const charts = new Map();

function chartFor(kit, sensor, unit) {
	const key = `${kit}\u0000${sensor}`;
	let c = charts.get(key);
	if (c) return c;
	const sec = patientSection(kit);
	const title = `${kit}: ${sensor}${unit ? ` (${unit})` : ""}`;
	const canvas = el("canvas", { role: "img", "aria-label": title, "data-kit": kit, "data-sensor": sensor });
	const tbody = el("tbody");
	const table = el("table", {},
		el("caption", { text: `${title}, newest first` }),
		el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Time" }),
			el("th", { scope: "col", text: "Value" }), el("th", { scope: "col", text: "Seq" }))),
		tbody);
	const latest = el("p", { class: "latest" });
	const figure = el("figure", { class: "chart" },
		el("figcaption", { text: title }), latest, el("div", { class: "canvas-box" }, canvas),
		el("details", {}, el("summary", { text: "Readings as a table" }), table));
	const box = sec.querySelector(".charts");
	const after = [...box.children].find((f) => f.dataset.sensor > sensor);
	figure.dataset.sensor = sensor;
	box.insertBefore(figure, after || null);
	const points = [];
	const chart = new window.Chart(canvas, {
		type: "line",
		data: {
			datasets: [{
				label: title,
				data: points,
				borderColor: COLOURS.line,
				pointBackgroundColor: (ctx) => (ctx.raw && ctx.raw.emergency ? COLOURS.emergency : COLOURS.line),
				pointRadius: (ctx) => (ctx.raw && ctx.raw.emergency ? 5 : 2),
				tension: 0,
			}],
		},
		options: {
			animation: false,
			parsing: false,
			normalized: true,
			maintainAspectRatio: false,
			plugins: {
				legend: { display: false },
				tooltip: { callbacks: { title: (items) => fmtTime(items[0].parsed.x) } },
			},
			scales: {
				x: { type: "linear", title: { display: true, text: "time" },
					ticks: { maxTicksLimit: 6, callback: tick } },
				y: { title: { display: !!unit, text: unit } },
			},
		},
	});
	c = { chart, points, unit, tbody, latest, canvas };
	charts.set(key, c);
	return c;
}

// Add opened readings ({kit, header, value}) to their charts, in time order.
export function plot(readings) {
	const touched = new Set();
	for (const r of readings) {
		const c = chartFor(r.kit, r.value.sensor, r.value.unit);
		const p = { x: r.header.timeMs, y: r.value.value, seq: r.header.seq, emergency: r.value.emergency };
		// Usually the newest: a push; otherwise in its place.
		let i = c.points.length;
		while (i > 0 && c.points[i - 1].x > p.x) i--;
		c.points.splice(i, 0, p);
		touched.add(c);
	}
	for (const c of touched) {
		// A minute at least across, so that one reading is not alone on a scale of years.
		const x = c.chart.options.scales.x;
		const first = c.points[0].x,
			span = c.points[c.points.length - 1].x - first;
		x.min = span < 60000 ? first - (60000 - span) / 2 : undefined;
		x.max = span < 60000 ? x.min + 60000 : undefined;
		c.chart.update("none");
		const last = c.points[c.points.length - 1];
		c.latest.textContent = `Latest: ${fmtValue(last.y, c.unit)} at ${fmtTime(last.x)} (${c.points.length} reading${c.points.length === 1 ? "" : "s"})`;
		c.tbody.replaceChildren(...c.points.slice(-TABLE_ROWS).reverse().map((p) =>
			el("tr", { class: p.emergency ? "emergency" : "" },
				el("td", { text: fmtTime(p.x) }),
				el("td", { text: fmtValue(p.y, c.unit) + (p.emergency ? " (emergency)" : "") }),
				el("td", { text: String(p.seq) }))));
	}
	show("no-patients", charts.size === 0);
}

// Emergencies not yet acknowledged: [{kit, header, value}], newest first. onAck(kit, seq).
export function emergencies(list, onAck, busy) {
	const ul = $("emergency-list");
	replaceItems(ul, list.map((r) => {
		const v = r.value;
		const what = `${r.kit}: ${v.sensor} ${fmtValue(v.value, v.unit)} ` +
			`(threshold ${fmtValue(v.threshold, v.unit)}) at ${fmtTime(r.header.timeMs)}, seq ${r.header.seq}`;
		const b = el("button", { type: "button", text: busy.has(r.kit) ? "Acknowledging…" : "Acknowledge",
			"aria-label": `Acknowledge ${r.kit}'s emergencies up to seq ${r.header.seq}`,
			onclick: () => onAck(r.kit, r.header.seq) });
		if (busy.has(r.kit)) b.disabled = true;
		return el("li", { class: "emergency" }, el("strong", { text: "Emergency " }), what, " ", b);
	}));
	show("emergencies", list.length > 0);
}

// The relay's expired rows, the stream named by its kit where we know it.
export function expired(rows, kitOf) {
	replaceItems($("expired-list"), rows.map((e) => el("li", {
		text: `${kitOf(e.stream)}: ${e.count} reading${e.count === 1 ? "" : "s"} removed ` +
			`(seq ${e.first_seq} to ${e.last_seq}, ${e.undelivered} never delivered), last at ${fmtTime(e.at_ms)}`,
	})));
	show("expired", rows.length > 0);
}

// What did not open: [{what, count, why}].
export function problems(rows) {
	replaceItems($("problem-list"), rows.map((p) => el("li", {
		text: `${p.what}: ${p.count} refused, the last because: ${p.why}`,
	})));
	show("problems", rows.length > 0);
}

export function reset() {
	for (const c of charts.values()) c.chart.destroy();
	charts.clear();
	for (const id of ["patient-list", "emergency-list", "expired-list", "problem-list"]) {
		$(id).replaceChildren();
		delete $(id).dataset.shown;
	}
	$("updated").textContent = "";
	for (const id of ["emergencies", "expired", "problems", "patients"]) show(id, false);
}
