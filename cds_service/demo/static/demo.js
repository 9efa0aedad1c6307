// The demo EHR: picks a patient, builds hook requests from the patient's FHIR data the way an EHR
// answers the service's prefetch templates, calls the real service, renders its cards and sends
// the clinician's feedback.
"use strict";

const state = { discovery: null, settings: null, resources: [], patientId: null, drafts: [], nextDraft: 1 };
const $ = (id) => document.getElementById(id);

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(url + " answered " + response.status);
  return response.json();
}

function uuid() {
  // crypto.randomUUID needs a secure context; the demo may be opened over plain http on a LAN
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
}

// A link target from a card: http(s) only, so a `javascript:` URL never reaches an href.
function safeHref(url) {
  return typeof url === "string" && /^https?:\/\//i.test(url) ? url : null;
}

function escapeXml(value) {
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function service(hook) {
  return state.discovery.services.find((s) => s.hook === hook);
}

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

// --- the patient's data ---------------------------------------------------------------------------

function ofType(type) {
  return state.resources.filter((r) => r.resourceType === type);
}

function codes(resource) {
  return ((resource.code && resource.code.coding) || []).map((c) => c.code);
}

function toNgPerMl(quantity) {
  const factor = state.settings.vitamin_d_units[quantity.code || quantity.unit];
  return factor ? quantity.value / factor : null;
}

function banner() {
  const patient = ofType("Patient")[0];
  const name = patient.name[0];
  const born = new Date(patient.birthDate);
  const age = Math.floor((Date.now() - born.getTime()) / (365.25 * 24 * 3600 * 1000));
  const box = $("banner");
  box.replaceChildren(
    text("strong", name.given.join(" ") + " " + name.family),
    text("span", "  ·  " + patient.gender + ", " + age + " years (born " + patient.birthDate + ")  ·  id " + patient.id)
  );
}

// A result as the laboratory sent it, for the page's own tables (the cards say how it was read).
function shownValue(o) {
  if (o.valueQuantity) return o.valueQuantity.value + " " + (o.valueQuantity.unit || "(no unit)");
  return o.valueString !== undefined ? o.valueString : "no value";
}

function chart() {
  const profile = state.settings.profile;
  const results = ofType("Observation").filter((o) => codes(o).some((c) => state.settings.vitamin_d_codes.includes(c)));
  const points = results
    .map((o) => ({ date: new Date(o.effectiveDateTime), value: o.valueQuantity ? toNgPerMl(o.valueQuantity) : null, label: o.effectiveDateTime }))
    .filter((p) => p.value !== null)
    .sort((a, b) => a.date - b.date);
  const box = $("chart");
  const unplotted = results.length - points.length;
  if (!points.length) {
    box.replaceChildren(text("p", results.length ? "No 25-hydroxyvitamin D result that can be plotted." : "No 25-hydroxyvitamin D result on file."));
    return;
  }
  const width = 560, height = 220, left = 44, right = 84, top = 10, bottom = 28;
  const maxValue = Math.max(profile.high_above + 20, ...points.map((p) => p.value + 10));
  const first = points[0].date.getTime(), last = points[points.length - 1].date.getTime();
  const span = Math.max(last - first, 30 * 24 * 3600 * 1000);
  const x = (d) => left + ((d.getTime() - first) / span) * (width - left - right - 20) + 10;
  const y = (v) => top + (1 - v / maxValue) * (height - top - bottom);
  const bands = [
    [0, profile.deficient_below, "#fde2e1", "deficient"],
    [profile.deficient_below, profile.insufficient_below, "#fff1cc", profile.insufficient_label],
    [profile.insufficient_below, profile.high_above, "#dcfce7", "sufficient"],
    [profile.high_above, maxValue, "#fde2e1", "high"],
  ];
  const svg = ['<svg role="img" aria-labelledby="chart-desc" viewBox="0 0 ' + width + " " + height + '" width="100%">'];
  svg.push('<title id="chart-desc">25-hydroxyvitamin D results in ng/mL with the ' + escapeXml(profile.label) + " bands</title>");
  for (const [low, high, colour, label] of bands) {
    svg.push('<rect x="' + left + '" y="' + y(high) + '" width="' + (width - left - right) + '" height="' + (y(low) - y(high)) + '" fill="' + colour + '"/>');
    svg.push('<text x="' + (width - right + 6) + '" y="' + (y(high) + 12) + '">' + escapeXml(label) + "</text>");
  }
  for (const tick of [profile.deficient_below, profile.insufficient_below, profile.high_above]) {
    svg.push('<text x="' + (left - 4) + '" y="' + (y(tick) + 4) + '" text-anchor="end">' + tick + "</text>");
  }
  svg.push('<polyline fill="none" stroke="#0f2a4a" stroke-width="2" points="' + points.map((p) => x(p.date) + "," + y(p.value)).join(" ") + '"/>');
  for (const p of points) {
    svg.push('<circle cx="' + x(p.date) + '" cy="' + y(p.value) + '" r="4" fill="#0f2a4a"><title>' + escapeXml(p.label) + ": " + p.value.toFixed(1) + " ng/mL</title></circle>");
  }
  svg.push('<text x="' + left + '" y="' + (height - 8) + '">' + escapeXml(points[0].label) + "</text>");
  svg.push('<text x="' + (width - right) + '" y="' + (height - 8) + '" text-anchor="end">' + escapeXml(points[points.length - 1].label) + "</text>");
  svg.push('<text x="4" y="' + (top + 10) + '">ng/mL</text>');
  svg.push("</svg>");
  box.innerHTML = svg.join("");
  box.append(text("p", "ng/mL; " + profile.label + " cut-points.", "source"));
  if (unplotted) box.append(text("p", unplotted + " result(s) not plotted: no value or unit that can be read.", "source"));
}

function electrolytes() {
  const body = $("electrolytes").querySelector("tbody");
  body.replaceChildren();
  for (const analyte of state.settings.electrolytes) {
    const latest = ofType("Observation")
      .filter((o) => codes(o).some((c) => analyte.codes.includes(c)))
      .sort((a, b) => b.effectiveDateTime.localeCompare(a.effectiveDateTime))[0];
    const row = document.createElement("tr");
    row.append(text("th", analyte.name));
    row.lastChild.scope = "row";
    row.append(text("td", latest ? shownValue(latest) : "none on file"));
    row.append(text("td", latest ? latest.effectiveDateTime : ""));
    row.append(text("td", analyte.range.low + "-" + analyte.range.high + " " + analyte.unit));
    body.append(row);
  }
}

// --- hook requests, built as an EHR answers the prefetch templates ---------------------------------

function search(template, context) {
  const query = template.replace(/\{\{\s*context\.(\w+)\s*\}\}/g, (_, name) => context[name]);
  if (!query.includes("?")) {
    const [type, id] = query.split("/");
    return state.resources.find((r) => r.resourceType === type && r.id === id) || null;
  }
  const [type, params] = query.split("?");
  const args = new URLSearchParams(params);
  let found = ofType(type).filter((r) => !r.subject || r.subject.reference === "Patient/" + context.patientId);
  if (args.get("code")) {
    const wanted = args.get("code").split(",").map((token) => token.split("|").pop());
    found = found.filter((r) => codes(r).some((c) => wanted.includes(c)));
  }
  if (args.get("status")) found = found.filter((r) => args.get("status").split(",").includes(r.status));
  if (args.get("clinical-status")) {
    const allowed = args.get("clinical-status").split(",");
    found = found.filter((r) => r.clinicalStatus && r.clinicalStatus.coding.some((c) => allowed.includes(c.code)));
  }
  if (args.get("_sort") === "-date") found.sort((a, b) => (b.effectiveDateTime || "").localeCompare(a.effectiveDateTime || ""));
  if (args.get("_count")) found = found.slice(0, Number(args.get("_count")));
  return { resourceType: "Bundle", type: "searchset", total: found.length, entry: found.map((r) => ({ resource: r })) };
}

function hookRequest(definition, extraContext) {
  const context = Object.assign({ userId: "Practitioner/demo-clinician", patientId: state.patientId }, extraContext || {});
  const prefetch = {};
  for (const [key, template] of Object.entries(definition.prefetch || {})) prefetch[key] = search(template, context);
  return { hook: definition.hook, hookInstance: uuid(), context, prefetch };
}

async function callService(definition, request) {
  $("raw-request").textContent = JSON.stringify(request, null, 2);
  const response = await fetch("/cds-services/" + definition.id, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(request),
  });
  const body = await response.json();
  $("raw-response").textContent = JSON.stringify(body, null, 2);
  if (!response.ok) throw new Error("the service answered " + response.status);
  return body;
}

// --- cards ----------------------------------------------------------------------------------------

async function sendFeedback(serviceId, entry, status) {
  status.textContent = "Sending feedback ...";
  const response = await fetch("/cds-services/" + serviceId + "/feedback", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ feedback: [entry] }),
  });
  status.textContent = response.ok ? "Feedback recorded: " + entry.outcome + "." : "Feedback failed (" + response.status + ").";
  status.dataset.outcome = response.ok ? entry.outcome : "failed";
}

function renderCard(card, serviceId) {
  const article = document.createElement("article");
  article.className = "card " + card.indicator;
  article.dataset.kind = card.source.topic ? card.source.topic.code : "";
  article.setAttribute("aria-label", card.indicator + ": " + card.summary);
  const heading = document.createElement("h3");
  heading.append(text("span", card.indicator, "indicator"), text("span", card.summary, "summary"));
  article.append(heading);
  const detail = document.createElement("div");
  detail.className = "detail";
  detail.replaceChildren(window.renderMarkdown(card.detail || ""));
  article.append(detail);
  const source = document.createElement("p");
  source.className = "source";
  source.append("Source: ");
  const sourceUrl = safeHref(card.source.url);
  const sourceLink = document.createElement(sourceUrl ? "a" : "span");
  sourceLink.textContent = card.source.label;
  if (sourceUrl) { sourceLink.href = sourceUrl; sourceLink.rel = "noopener"; sourceLink.target = "_blank"; }
  source.append(sourceLink);
  for (const link of card.links || []) {
    // A SMART app link: an EHR would launch it; the demo, which has no authorization server, opens
    // the app's demo mode on the patient shown.
    const href = link.type === "smart" ? "/smart/demo/" + encodeURIComponent(state.patientId) : safeHref(link.url);
    const a = document.createElement(href ? "a" : "span");
    if (href) { a.href = href; a.rel = "noopener"; a.target = "_blank"; }
    if (link.type === "smart") a.className = "smart-link";
    a.textContent = link.label;
    source.append("  ·  ", a);
  }
  article.append(source);

  const status = text("p", "", "feedback-status");
  status.setAttribute("role", "status");
  const actions = document.createElement("div");
  actions.className = "actions";
  const now = () => new Date().toISOString();
  for (const suggestion of card.suggestions || []) {
    const accept = text("button", "Accept: " + suggestion.label, "primary");
    accept.type = "button";
    accept.addEventListener("click", () => sendFeedback(serviceId, {
      card: card.uuid, outcome: "accepted", acceptedSuggestions: [{ id: suggestion.uuid }], outcomeTimestamp: now(),
    }, status));
    actions.append(accept);
    const what = document.createElement("details");
    what.append(text("summary", "What it would do"), text("pre", JSON.stringify(suggestion.actions, null, 2)));
    actions.append(what);
  }
  const reasonId = "reason-" + card.uuid;
  const label = text("label", "Override reason");
  label.htmlFor = reasonId;
  const reasons = document.createElement("select");
  reasons.id = reasonId;
  for (const reason of card.overrideReasons || []) {
    const option = text("option", reason.display);
    option.value = reason.code;
    reasons.append(option);
  }
  const override = text("button", "Override");
  override.type = "button";
  override.addEventListener("click", () => {
    const reason = (card.overrideReasons || []).find((r) => r.code === reasons.value);
    sendFeedback(serviceId, {
      card: card.uuid, outcome: "overridden", overrideReason: reason ? { reason } : undefined, outcomeTimestamp: now(),
    }, status);
  });
  actions.append(label, reasons, override);
  article.append(actions, status);
  return article;
}

function showCards(box, statusBox, body, serviceId) {
  box.replaceChildren(...body.cards.map((card) => renderCard(card, serviceId)));
  statusBox.textContent = body.cards.length ? body.cards.length + " card(s)." : "No cards: nothing actionable.";
}

async function patientView() {
  const definition = service("patient-view");
  $("cards-status").textContent = "Calling " + definition.id + " ...";
  try {
    showCards($("cards"), $("cards-status"), await callService(definition, hookRequest(definition)), definition.id);
  } catch (error) {
    $("cards-status").textContent = "Error: " + error.message;
  }
}

// --- orders ---------------------------------------------------------------------------------------

function draft(kind) {
  const id = "draft-" + state.nextDraft++;
  const subject = { reference: "Patient/" + state.patientId };
  const requester = { reference: "Practitioner/demo-clinician" };
  if (kind === "vitd") {
    return {
      resourceType: "MedicationRequest", id, status: "draft", intent: "order", subject, requester,
      medicationCodeableConcept: {
        coding: [{ system: "http://www.nlm.nih.gov/research/umls/rxnorm", code: "316965", display: "cholecalciferol 50000 UNT Oral Capsule" }],
        text: "cholecalciferol 50000 UNT Oral Capsule",
      },
    };
  }
  const [code, display] = kind === "25" ? ["62292-8", "25-Hydroxyvitamin D2+D3"] : ["62290-2", "1,25-Dihydroxyvitamin D2+D3"];
  return {
    resourceType: "ServiceRequest", id, status: "draft", intent: "order", subject, requester,
    code: { coding: [{ system: "http://loinc.org", code, display }], text: display },
  };
}

function draftsBundle() {
  return { resourceType: "Bundle", type: "collection", entry: state.drafts.map((r) => ({ resource: r })) };
}

function listDrafts() {
  $("drafts").replaceChildren(...state.drafts.map((r) => text("li", r.resourceType + "/" + r.id + ": " + (r.code || r.medicationCodeableConcept).text)));
}

async function orderHook(hook, selections) {
  const definition = service(hook);
  const extra = { draftOrders: draftsBundle() };
  if (selections) extra.selections = selections;
  $("orders-status").textContent = "Calling " + definition.id + " ...";
  try {
    showCards($("order-cards"), $("orders-status"), await callService(definition, hookRequest(definition, extra)), definition.id);
  } catch (error) {
    $("orders-status").textContent = "Error: " + error.message;
  }
}

async function addDraft(kind) {
  const resource = draft(kind);
  state.drafts.push(resource);
  listDrafts();
  await orderHook("order-select", [resource.resourceType + "/" + resource.id]);
}

// --- start ----------------------------------------------------------------------------------------

async function choose(patientId) {
  state.patientId = patientId;
  state.drafts = [];
  listDrafts();
  $("order-cards").replaceChildren();
  $("orders-status").textContent = "";
  const option = [...$("patient-picker").options].find((o) => o.value === patientId);
  $("patient-about").textContent = option ? option.dataset.about : "";
  const bundle = await getJson("/demo/patients/" + encodeURIComponent(patientId));
  state.resources = bundle.entry.map((e) => e.resource);
  banner();
  chart();
  electrolytes();
  await patientView();
}

async function start() {
  [state.discovery, state.settings] = await Promise.all([getJson("/cds-services"), getJson("/demo/settings")]);
  const picker = $("patient-picker");
  for (const patient of await getJson("/demo/patients")) {
    const option = text("option", patient.name.given.join(" ") + " " + patient.name.family + " (" + patient.id + ")");
    option.value = patient.id;
    option.dataset.about = patient.about;
    picker.append(option);
  }
  picker.addEventListener("change", () => choose(picker.value));
  $("draft-25").addEventListener("click", () => addDraft("25"));
  $("draft-125").addEventListener("click", () => addDraft("125"));
  $("draft-vitd").addEventListener("click", () => addDraft("vitd"));
  $("sign").addEventListener("click", () => orderHook("order-sign"));
  $("clear-drafts").addEventListener("click", () => { state.drafts = []; listDrafts(); $("order-cards").replaceChildren(); });
  await choose(picker.value);
  document.body.dataset.ready = "true";
}

start().catch((error) => { $("cards-status").textContent = "Error: " + error.message; });
