// The catalogue: search (GET /v1/skus?q=), a page of SKUs at a time, and a form for a new SKU.

import { ApiFailure, api } from "./api.js";
import { attempt, el, field, gate, showAlert } from "./ui.js";

const PAGE_SIZE = 25;
const SKU_PATTERN = "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}";

function hashFor(q, offset) {
  const params = new URLSearchParams();
  if (q) params.set("q", q);
  if (offset) params.set("offset", String(offset));
  const query = params.toString();
  return `#/skus${query ? `?${query}` : ""}`;
}

function newSkuForm(session) {
  const id = field("SKU id", { name: "sku", required: true, pattern: SKU_PATTERN, maxlength: 64, autocomplete: "off",
    "aria-describedby": "new-sku-hint" });
  const name = field("Name", { name: "name", required: true, maxlength: 200, grow: true });
  const price = field("Price", { name: "price", inputmode: "decimal", pattern: "[0-9]+(\\.[0-9]+)?",
    placeholder: "2.35" });
  const submit = el("button", { type: "submit" }, "Create SKU");
  const why = gate(submit, session, "merchandiser", "create a SKU");
  const form = el("form", { class: "card", "aria-labelledby": "new-sku-title" },
    el("h2", { id: "new-sku-title" }, "New SKU"),
    el("div", { class: "row" }, id.wrap, name.wrap, price.wrap, submit),
    el("p", { class: "hint", id: "new-sku-hint" }, "Id: letters, digits, '.', '_' or '-', up to 64. " +
      "Add its photos on the next page."),
    why);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    attempt(async () => {
      const sku = id.input.value.trim();
      const body = { name: name.input.value.trim(), price: price.input.value.trim() || null };
      try { // create only: PUT alone would replace an existing SKU's name, price and attributes
        await api(`/v1/skus/${encodeURIComponent(sku)}`, { method: "PUT", json: body,
          headers: { "If-None-Match": "*" } });
      } catch (error) {
        if (!(error instanceof ApiFailure && error.status === 412)) throw error;
        showAlert([`SKU ${sku} already exists: nothing was changed. `,
          el("a", { href: `#/sku/${encodeURIComponent(sku)}`, id: "existing-sku" }, `Open SKU ${sku}`)]);
        return;
      }
      location.hash = `#/sku/${encodeURIComponent(sku)}`;
    });
  });
  return form;
}

function skuTable(page) {
  const rows = page.items.map((s) => el("tr", {},
    el("td", {}, el("a", { href: `#/sku/${encodeURIComponent(s.sku)}` }, s.sku)),
    el("td", {}, s.name),
    el("td", { class: "num" }, s.price === null ? "—" : `${s.price} ${s.currency}`),
    el("td", { class: "num optional" }, String(s.image_count))));
  return el("div", { class: "table-wrap" }, el("table", { id: "sku-table" },
    el("caption", { class: "hint" }, "SKUs, by id"),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "SKU"), el("th", { scope: "col" }, "Name"),
      el("th", { scope: "col", class: "num" }, "Price"), el("th", { scope: "col", class: "num optional" }, "Photos"))),
    el("tbody", {}, rows)));
}

export async function renderCatalogue(view, { session, current }, params) {
  const q = params.get("q") || "";
  const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  const search = field("Search SKUs", { type: "search", name: "q", value: q, maxlength: 100, grow: true,
    placeholder: "id or name" });
  const searchForm = el("form", { role: "search", class: "row card" }, search.wrap,
    el("button", { type: "submit" }, "Search"),
    q ? el("button", { type: "button", class: "secondary", onclick: () => { location.hash = hashFor("", 0); } },
      "Clear") : null);
  searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = hashFor(search.input.value.trim(), 0);
  });
  const results = el("section", { "aria-labelledby": "results-title", "aria-live": "polite" });
  view.append(el("h1", {}, "Catalogue"), searchForm, results, newSkuForm(session));

  const query = new URLSearchParams({ offset: String(offset), limit: String(PAGE_SIZE) });
  if (q) query.set("q", q);
  const page = await attempt(() => api(`/v1/skus?${query}`), current);
  if (!current()) return; // the user has gone elsewhere meanwhile
  if (!page) {
    results.append(el("h2", { id: "results-title" }, "SKUs"), el("p", {}, "The catalogue could not be loaded."));
    return;
  }
  const last = Math.min(offset + page.items.length, page.total);
  const summary = page.total === 0 ? (q ? `No SKU matches “${q}”.` : "The catalogue is empty.")
    : `${offset + 1}–${last} of ${page.total}${q ? ` matching “${q}”` : ""}`;
  const previous = el("button", { type: "button", class: "secondary", disabled: offset === 0,
    onclick: () => { location.hash = hashFor(q, Math.max(0, offset - PAGE_SIZE)); } }, "Previous page");
  const next = el("button", { type: "button", class: "secondary", disabled: last >= page.total,
    onclick: () => { location.hash = hashFor(q, offset + PAGE_SIZE); } }, "Next page");
  results.append(el("h2", { id: "results-title" }, q ? "Search results" : "SKUs"),
    el("p", { id: "results-summary" }, summary), page.items.length ? skuTable(page) : "",
    page.total > PAGE_SIZE ? el("nav", { class: "pager", "aria-label": "Pages of SKUs" }, previous, next) : "");
  if (offset > 0 && page.items.length === 0 && page.total > 0) showAlert("This page is past the end of the list.");
}
