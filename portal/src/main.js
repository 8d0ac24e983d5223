// The Stratus customer portal: sign in, draw an area, order a service, watch the order, see its product on
// the map; admins manage customers, scopes, usage limits and services. Plain DOM, no framework.
import * as api from "./api.js";
import { field, h, say } from "./dom.js";
import { isArea, parameterFields, parameterValues } from "./forms.js";
import { PortalMap } from "./map.js";
import "./style.css";

const ENDED = new Set(["SUCCESS", "FAILED", "INVALID", "CANCELLED"]);
const POLL_MS = 1500;
const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

// quicklooks: order id -> promise of its XYZ service (made once per order and session)
const state = { config: {}, me: null, map: null, area: null, areaKm2: 0, poll: null, detailPoll: null,
  quicklooks: new Map(), shownQuicklook: null };

function clearPoll() {
  clearTimeout(state.poll);
  clearTimeout(state.detailPoll);
  state.poll = null;
  state.detailPoll = null;
}

function failed(error) {
  say(error.message || String(error), "error");
}

// --- signing in ----------------------------------------------------------------------------------

function authView() {
  clearPoll();
  nav.hidden = true;
  who.replaceChildren();
  const signInForm = h("form", { "aria-labelledby": "signin-h", onsubmit: async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    try {
      state.me = await api.signIn(data.get("email"), data.get("password"));
      say(`Signed in as ${state.me.email || state.me.name}.`);
      shell();
    } catch (error) {
      failed(error);
    }
  } },
  h("h2", { id: "signin-h" }, "Sign in"),
  field("E-mail", h("input", { type: "email", name: "email", autocomplete: "username", required: true })),
  field("Password", h("input", { type: "password", name: "password", autocomplete: "current-password", required: true })),
  h("button", { type: "submit" }, "Sign in"));

  const verifyForm = h("form", { "aria-labelledby": "verify-h", hidden: true, onsubmit: async (event) => {
    event.preventDefault();
    try {
      const account = await api.orders("POST", "/auth/register/verify", { json: { token: new FormData(event.target).get("token") } });
      say("Your account is ready. Sign in with your e-mail and password.");
      verifyForm.append(h("div", { class: "secret", role: "note" },
        h("p", {}, "Your API client (shown once; keep the secret safe for scripts):"),
        h("p", {}, "Client id: ", h("code", {}, account.client_id)),
        h("p", {}, "Client secret: ", h("code", {}, account.client_secret))));
    } catch (error) {
      failed(error);
    }
  } },
  h("h2", { id: "verify-h" }, "Confirm your e-mail"),
  field("Verification token", h("input", { type: "text", name: "token", required: true, autocomplete: "one-time-code" }), "The token from the e-mail we sent you."),
  h("button", { type: "submit" }, "Confirm"));

  const registerForm = h("form", { "aria-labelledby": "register-h", onsubmit: async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(event.target));
    try {
      const answer = await api.orders("POST", "/auth/register", { json: data });
      say(answer.message);
      verifyForm.hidden = false;
      verifyForm.querySelector("input").focus();
    } catch (error) {
      failed(error);
    }
  } },
  h("h2", { id: "register-h" }, "Register"),
  field("Name", h("input", { type: "text", name: "name", autocomplete: "name", required: true })),
  field("E-mail", h("input", { type: "email", name: "email", autocomplete: "email", required: true })),
  field("Password", h("input", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: 12 }), "At least 12 characters."),
  h("button", { type: "submit" }, "Register"));

  const resetConfirm = h("form", { "aria-labelledby": "reset2-h", hidden: true, onsubmit: async (event) => {
    event.preventDefault();
    try {
      const answer = await api.orders("POST", "/auth/password-reset/confirm", { json: Object.fromEntries(new FormData(event.target)) });
      say(answer.message);
    } catch (error) {
      failed(error);
    }
  } },
  h("h3", { id: "reset2-h" }, "Set a new password"),
  field("E-mail", h("input", { type: "email", name: "email", required: true })),
  field("Reset token", h("input", { type: "text", name: "token", required: true })),
  field("New password", h("input", { type: "password", name: "new_password", autocomplete: "new-password", required: true, minlength: 12 })),
  h("button", { type: "submit" }, "Change password"));

  const resetForm = h("form", { "aria-labelledby": "reset-h", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const answer = await api.orders("POST", "/auth/password-reset", { json: Object.fromEntries(new FormData(event.target)) });
      say(answer.message);
      resetConfirm.hidden = false;
    } catch (error) {
      failed(error);
    }
  } },
  h("h3", { id: "reset-h" }, "Forgot your password?"),
  field("E-mail", h("input", { type: "email", name: "email", required: true })),
  h("button", { type: "submit" }, "Send a reset token"));

  main.replaceChildren(h("div", { class: "cards" },
    h("section", { class: "card" }, signInForm, h("details", {}, h("summary", {}, "Reset your password"), resetForm, resetConfirm)),
    h("section", { class: "card" }, registerForm, verifyForm)));
}

// --- the signed-in shell --------------------------------------------------------------------------

function shell() {
  const isAdmin = (state.me.scopes || []).includes("admin");
  const sections = [["order", "Map & order"], ["orders", "My orders"], ...(isAdmin ? [["admin", "Administration"]] : [])];
  nav.hidden = false;
  nav.replaceChildren(...sections.map(([id, label]) => h("button", { type: "button", "data-view": id, onclick: () => show(id) }, label)));
  who.replaceChildren(h("span", {}, state.me.email || state.me.name), h("button", { type: "button", onclick: () => {
    api.signOut();
    state.me = null;
    Object.assign(state, { map: null, area: null, quicklooks: new Map(), shownQuicklook: null });
    say("Signed out.");
    authView();
  } }, "Sign out"));
  main.replaceChildren(
    h("div", { class: "layout" },
      h("div", { class: "map-wrap" }, h("div", { id: "map", class: "map", role: "region", "aria-label": "Map" }), h("p", { id: "quicklook-state", class: "hint" })),
      h("div", { id: "panel", class: "panel" })));
  state.map = new PortalMap("map", state.config, (geometry, km2) => {
    state.area = geometry;
    state.areaKm2 = km2;
    const label = document.getElementById("area-size");
    if (label) label.textContent = geometry ? `Area: ${km2.toFixed(2)} km²` : "No area yet.";
    document.dispatchEvent(new CustomEvent("area-changed"));
  });
  show("order");
}

function show(view) {
  clearPoll();
  for (const button of nav.querySelectorAll("button")) button.setAttribute("aria-current", String(button.dataset.view === view));
  const panel = document.getElementById("panel");
  panel.replaceChildren();
  ({ order: orderPanel, orders: ordersPanel, admin: adminPanel })[view](panel).catch(failed);
}

// --- area and ordering ----------------------------------------------------------------------------

async function orderPanel(panel) {
  const collections = await api.openeo("GET", "/collections").then((r) => r.body.collections).catch(() => []);
  // a collection's overall extent, and each of its areas where it lists several (STAC: bbox[1..])
  const places = collections.flatMap((c) => {
    const boxes = (c.extent && c.extent.spatial && c.extent.spatial.bbox) || [];
    const name = c.title || c.id;
    return boxes.map((bbox, i) => ({ bbox, label: i === 0 ? name : `${name} — area ${i}` }));
  });
  const zoomSelect = h("select", { onchange: (event) => {
    const place = places[Number(event.target.value)];
    if (place) state.map.zoomTo(place.bbox);
  } }, h("option", { value: "" }, "Choose a collection…"), places.map((p, i) => h("option", { value: i }, p.label)));
  const upload = h("input", { type: "file", accept: ".geojson,.json,application/geo+json,application/json", onchange: async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      state.map.setArea(JSON.parse(await file.text()));
      say(`Area read from ${file.name}.`);
    } catch (error) {
      say(`The file is not GeoJSON: ${error.message}`, "error");
    }
  } });
  const bboxInput = h("input", { type: "text", name: "bbox", placeholder: "west, south, east, north", inputmode: "decimal" });
  const areaSection = h("section", { "aria-labelledby": "area-h" },
    h("h2", { id: "area-h" }, "1. Your area"),
    field("Go to the data of", zoomSelect),
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: () => { state.map.draw("box"); say("Click two corners on the map."); } }, "Draw a rectangle"),
      h("button", { type: "button", onclick: () => { state.map.draw("polygon"); say("Click the corners on the map; double-click the last."); } }, "Draw a polygon"),
      h("button", { type: "button", onclick: () => state.map.clearArea() }, "Clear")),
    field("Or upload GeoJSON", upload),
    h("form", { class: "inline", onsubmit: (event) => {
      event.preventDefault();
      const numbers = bboxInput.value.split(/[\s,]+/).filter(Boolean).map(Number);
      if (numbers.length !== 4 || numbers.some(Number.isNaN)) return say("Type four numbers: west, south, east, north.", "error");
      state.map.setBbox(...numbers);
    } }, field("Or type a bounding box (degrees)", bboxInput), h("button", { type: "submit" }, "Use")),
    h("p", { id: "area-size", class: "area-size", "aria-live": "polite" }, state.area ? `Area: ${state.areaKm2.toFixed(2)} km²` : "No area yet."));

  const services = (await api.orders("GET", "/services")).services;
  const serviceSelect = h("select", { name: "service" }, h("option", { value: "" }, "Choose a service…"), services.map((s) => h("option", { value: s.id }, s.title || s.id)));
  const formSlot = h("div");
  const catalogue = h("section", { "aria-labelledby": "service-h" }, h("h2", { id: "service-h" }, "2. A service"), field("Service", serviceSelect), formSlot);
  serviceSelect.addEventListener("change", async () => {
    formSlot.replaceChildren();
    if (!serviceSelect.value) return;
    const service = await api.orders("GET", `/services/${encodeURIComponent(serviceSelect.value)}`);
    formSlot.replaceChildren(serviceForm(service));
  });
  panel.append(areaSection, catalogue);
}

function serviceForm(service) {
  const estimate = h("div", { id: "estimate", class: "estimate", "aria-live": "polite" });
  const areaParameter = service.parameters.find(isArea);
  const form = h("form", { "aria-label": `Order ${service.title || service.id}`, onsubmit: async (event) => {
    event.preventDefault();
    try {
      const parameters = parameterValues(form, service.parameters, state.area);
      if (areaParameter && !state.area) return say("Draw or upload an area first.", "error");
      const order = await api.orders("POST", `/services/${encodeURIComponent(service.id)}/orders`, { json: { parameters } });
      say(`Order ${order.order_id} received.`);
      show("orders");
      setTimeout(() => openOrder(order.order_id), 0);
    } catch (error) {
      failed(error);
    }
  } },
  h("p", {}, service.summary || service.description || ""),
  areaParameter ? h("p", { class: "hint" }, `The ${areaParameter.name} is the area on the map.`) : null,
  parameterFields(service.parameters),
  h("div", { class: "buttons" },
    h("button", { type: "button", onclick: () => estimateOrder(service, form, estimate) }, "Estimate"),
    h("button", { type: "submit", class: "primary" }, "Order")),
  estimate);
  const refresh = () => estimateOrder(service, form, estimate, true);
  document.addEventListener("area-changed", refresh);
  form.addEventListener("change", refresh);
  return form;
}

async function estimateOrder(service, form, target, quiet = false) {
  if (!document.body.contains(form)) return;
  let parameters;
  try {
    parameters = parameterValues(form, service.parameters, state.area);
  } catch (error) {
    if (!quiet) failed(error);
    return;
  }
  try {
    const answer = await api.orders("POST", `/services/${encodeURIComponent(service.id)}/estimate`, { json: { parameters } });
    target.replaceChildren(
      h("p", {}, answer.area_km2 === null ? "" : `Area ${answer.area_km2.toFixed(2)} km² (at most ${answer.max_area_km2} km²).`),
      answer.valid
        ? h("p", {}, answer.costs === null ? "The costs cannot be estimated now." : `Estimated costs: ${answer.costs} ${answer.currency}, about ${answer.duration_s} s.`)
        : h("p", { class: "problem" }, `This order would be invalid: ${answer.problem.reason}`));
  } catch (error) {
    target.replaceChildren(h("p", { class: quiet ? "hint" : "problem" }, error.message));
  }
}

// --- orders -----------------------------------------------------------------------------------------

async function ordersPanel(panel) {
  const list = h("ul", { class: "orders", "aria-label": "Orders" });
  const detail = h("div", { id: "order-detail" });
  panel.append(h("h2", {}, "My orders"), list, detail);
  const refresh = async () => {
    if (!document.body.contains(list)) return;
    const orders = (await api.orders("GET", "/orders")).orders;
    list.replaceChildren(...(orders.length ? orders.map((o) => h("li", {},
      h("button", { type: "button", class: "link", onclick: () => openOrder(o.order_id) }, o.title || o.service || o.order_id),
      " ", h("span", { class: `badge s-${o.status}`, "data-order": o.order_id }, o.status),
      h("small", {}, ` ${new Date(o.created).toLocaleString()}`))) : [h("li", {}, "No orders yet.")]));
    if (orders.some((o) => !ENDED.has(o.status))) state.poll = setTimeout(() => refresh().catch(failed), POLL_MS);
  };
  await refresh();
}

async function openOrder(orderId) {
  const detail = document.getElementById("order-detail");
  if (!detail) return;
  clearTimeout(state.detailPoll);
  const render = async () => {
    if (!document.body.contains(detail)) return;
    const [order, logs] = await Promise.all([
      api.orders("GET", `/orders/${encodeURIComponent(orderId)}`),
      api.orders("GET", `/orders/${encodeURIComponent(orderId)}/logs`).catch(() => ({ logs: [] })),
    ]);
    const results = order.results || [];
    detail.replaceChildren(h("section", { "aria-labelledby": "order-h", class: "card" },
      h("h3", { id: "order-h" }, order.title || order.order_id),
      h("p", {}, "Status: ", h("strong", { id: "order-status", class: `badge s-${order.status}` }, order.status),
        order.progress !== null && order.progress !== undefined && !ENDED.has(order.status) ? ` (${order.progress} %)` : ""),
      order.status_reason ? h("p", { class: "problem", id: "order-reason" }, order.status_reason) : null,
      !ENDED.has(order.status) ? h("button", { type: "button", onclick: () => cancelOrder(orderId) }, "Cancel order") : null,
      results.length ? h("div", {}, h("h4", {}, "Downloads"), h("ul", { class: "downloads" }, results.map((r) =>
        h("li", {}, h("a", { href: r.href, download: r.name || "", rel: "noopener" }, r.title || r.name), r.type ? h("small", {}, ` ${r.type}`) : null)))) : null,
      order.status === "SUCCESS" ? h("button", { type: "button", onclick: () => showQuicklook(orderId).catch(failed) }, "Show on the map") : null,
      h("details", { open: true }, h("summary", {}, `Log (${logs.logs.length})`),
        h("ol", { class: "logs", tabindex: 0, "aria-label": "Log entries" }, logs.logs.map((entry) => h("li", { class: `log-${entry.level}` }, h("small", {}, `${entry.time || ""} ${entry.level} `), entry.message))))));
    if (!ENDED.has(order.status)) state.detailPoll = setTimeout(() => render().catch(failed), POLL_MS);
    else if (order.status === "SUCCESS" && state.shownQuicklook !== orderId) await showQuicklook(orderId);
  };
  await render();
}

async function cancelOrder(orderId) {
  try {
    await api.orders("DELETE", `/orders/${encodeURIComponent(orderId)}`);
    say("The order is being cancelled.");
    await openOrder(orderId);
  } catch (error) {
    failed(error);
  }
}

// The product as map tiles: an openEO XYZ service of the order's job, made once per order and session.
async function quicklookService(orderId) {
  const created = await api.openeo("POST", "/services", { json: {
    type: "XYZ", title: `Quicklook of ${orderId}`,
    process: { process_graph: { result: { process_id: "load_result", arguments: { id: orderId }, result: true } } },
    configuration: { colormap: "rdylgn" },
  } });
  const id = created.headers.get("OpenEO-Identifier");
  return (await api.openeo("GET", `/services/${encodeURIComponent(id)}`)).body;
}

async function showQuicklook(orderId) {
  if (!state.quicklooks.has(orderId)) {
    state.quicklooks.set(orderId, quicklookService(orderId).catch((error) => {
      state.quicklooks.delete(orderId);
      throw error;
    }));
  }
  const service = await state.quicklooks.get(orderId);
  if (state.shownQuicklook === orderId) return;
  state.shownQuicklook = orderId;
  const stateLine = document.getElementById("quicklook-state");
  state.map.showQuicklook(service.url, service.attributes.bbox);
  stateLine.dataset.url = service.url;
  state.map.onQuicklookTiles(({ started, loaded, failed }) => {
    stateLine.textContent = `Quicklook of ${orderId} on the map: ${loaded} of ${started} tiles drawn`
      + (failed ? `, ${failed} failed.` : ".");
    Object.assign(stateLine.dataset, { started, tiles: loaded, failed });
  });
  say("The product is shown on the map.");
}

// --- administration -----------------------------------------------------------------------------------

async function adminPanel(panel) {
  const customers = (await api.orders("GET", "/crm/customers?limit=100")).customers;
  const services = (await api.orders("GET", "/services")).services;
  const detail = h("div", { id: "customer-detail" });
  panel.append(
    h("h2", {}, "Customers"),
    h("table", { class: "table" }, h("caption", {}, `${customers.length} customers`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "E-mail"), h("th", { scope: "col" }, "Active"), h("th", { scope: "col" }, "Scopes"))),
      h("tbody", {}, customers.map((c) => h("tr", {},
        h("td", {}, h("button", { type: "button", class: "link", onclick: () => customerDetail(detail, c.customer_id, services).catch(failed) }, c.name || c.customer_id)),
        h("td", {}, c.email), h("td", {}, c.active ? "yes" : "no"), h("td", {}, (c.scopes || []).join(", ")))))),
    detail,
    h("h2", {}, "Services"),
    h("table", { class: "table" }, h("caption", {}, `${services.length} services`),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Service"), h("th", { scope: "col" }, "Published"), h("th", { scope: "col" }, "Default usage limit"), h("th", { scope: "col" }, ""))),
      h("tbody", {}, services.map((s) => h("tr", {},
        h("td", {}, s.title || s.id, h("br"), h("small", {}, s.id)), h("td", {}, s.published === false ? "no" : "yes"),
        h("td", {}, s.default_usage_limit ? `${s.default_usage_limit.limit} per ${s.default_usage_limit.interval_s} s` : "none"),
        h("td", {}, s.published === false ? "" : h("button", { type: "button", onclick: async () => {
          if (!confirm(`Withdraw ${s.id}? Customers can no longer order it.`)) return;
          await api.orders("DELETE", `/services/${encodeURIComponent(s.id)}`).catch(failed);
          show("admin");
        } }, `Withdraw ${s.id}`)))))));
}

async function customerDetail(detail, customerId, services) {
  const customer = await api.orders("GET", `/crm/customers/${encodeURIComponent(customerId)}`);
  const usage = await api.orders("GET", `/crm/customers/${encodeURIComponent(customerId)}/usage`).catch(() => null);
  const rerender = () => customerDetail(detail, customerId, services).catch(failed);
  const scopeInput = h("input", { type: "text", name: "scope", placeholder: "service:ndvi-composite" });
  const limitService = h("select", { name: "service" }, services.map((s) => h("option", { value: s.id }, s.id)));
  const limitCount = h("input", { type: "number", name: "limit", min: 0, step: 1, required: true });
  const limitInterval = h("input", { type: "number", name: "interval_s", min: 1, step: 1, required: true, value: 86400 });
  detail.replaceChildren(h("section", { class: "card", "aria-labelledby": "customer-h" },
    h("h3", { id: "customer-h" }, customer.name || customer.customer_id),
    h("p", {}, customer.email, " · ", customer.active ? "active" : "inactive", " ",
      h("button", { type: "button", onclick: async () => {
        await api.orders("PATCH", `/crm/customers/${encodeURIComponent(customerId)}`, { json: { active: !customer.active } }).catch(failed);
        rerender();
      } }, customer.active ? "Deactivate" : "Activate")),
    h("h4", {}, "Scopes"),
    h("ul", {}, (customer.scopes || []).map((scope) => h("li", {}, scope, " ", h("button", { type: "button", "aria-label": `Revoke ${scope}`, onclick: async () => {
      await api.orders("DELETE", `/auth/scopes/${encodeURIComponent(customerId)}/${encodeURIComponent(scope)}`).catch(failed);
      rerender();
    } }, "Revoke")))),
    h("form", { class: "inline", onsubmit: async (event) => {
      event.preventDefault();
      await api.orders("POST", "/auth/scopes", { json: { customer_id: customerId, scope: scopeInput.value.trim() } }).catch(failed);
      rerender();
    } }, field("Grant a scope", scopeInput), h("button", { type: "submit" }, "Grant")),
    h("h4", {}, "Usage limits"),
    h("ul", { id: "usage-limits" }, Object.entries(customer.usage_limits || {}).map(([service, l]) => h("li", {}, `${service}: ${l.limit} orders per ${l.interval_s} s`))),
    usage ? h("details", {}, h("summary", {}, "Usage"), h("pre", {}, JSON.stringify(usage, null, 2))) : null,
    h("form", { "aria-label": "Set a usage limit", onsubmit: async (event) => {
      event.preventDefault();
      try {
        await api.orders("PATCH", `/crm/customers/${encodeURIComponent(customerId)}`, { json: { usage_limits: {
          [limitService.value]: { limit: Number(limitCount.value), interval_s: Number(limitInterval.value) } } } });
        say(`Usage limit of ${limitService.value} set.`);
        rerender();
      } catch (error) {
        failed(error);
      }
    } }, field("Service", limitService), field("Orders at most", limitCount), field("Per seconds", limitInterval),
    h("button", { type: "submit" }, "Set usage limit"))));
}

// --- start ----------------------------------------------------------------------------------------------

async function start() {
  state.config = await fetch("config.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  api.configure(state.config.api || "");
  authView();
}

start();
