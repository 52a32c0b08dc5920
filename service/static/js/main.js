// The console's shell: the API key, the role it has, the server's model and gallery size, and the
// hash router (#/skus, #/sku/ID, #/lane) that draws a page into <main id="view">.

import { ApiFailure, getKey, setKey, whoami } from "./api.js";
import { renderCatalogue } from "./catalogue.js";
import { renderLane } from "./lane.js";
import { renderSku } from "./sku.js";
import { alertOnNavigation, clearAlert, newView, showAlert } from "./ui.js";

/** What the pages need to know about the caller: role (null: no valid key), keys_required. */
const session = { role: null, keysRequired: false };

async function loadSession() {
  const status = document.getElementById("key-status");
  try {
    const me = await whoami();
    session.role = me.role;
    session.keysRequired = me.keys_required;
    status.textContent = me.keys_required ? `Role: ${me.role}` : "Open server: no key needed";
  } catch (error) {
    session.role = null;
    session.keysRequired = true;
    if (error instanceof ApiFailure && error.status === 401) {
      status.textContent = getKey() ? "Key not accepted (401)" : "A key is needed";
    } else {
      status.textContent = "Role unknown";
    }
  }
}

/** The footer line: model version and gallery size (GET /readyz, no key needed). */
export async function refreshInfo() {
  const line = document.getElementById("server-info");
  try {
    const response = await fetch("/readyz");
    const ready = await response.json();
    if (ready.status === "ready") {
      line.textContent = `Model ${ready.model_version} · gallery: ${ready.skus} SKUs, ` +
        `${ready.reference_images} reference images`;
    } else {
      line.textContent = `Server ${ready.status}${ready.detail ? `: ${ready.detail}` : ""}`;
    }
  } catch {
    line.textContent = "The server cannot be reached";
  }
}

/** The page the hash names; ``malformed`` when it cannot be decoded (a stray %): the catalogue then. */
function parseRoute() {
  const hash = location.hash.replace(/^#/, "") || "/skus";
  const [path, query = ""] = hash.split("?");
  try {
    return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(query) };
  } catch { // URIError
    return { parts: ["skus"], params: new URLSearchParams(), malformed: hash };
  }
}

async function route(focusHeading = true) {
  const { parts, params, malformed } = parseRoute();
  const view = document.getElementById("view");
  if (malformed !== undefined) {
    showAlert(`The address #${malformed} is not a valid console page (a % not followed by two hex digits); ` +
      "showing the catalogue.");
  }
  const page = parts[0] === "sku" && parts[1] ? "sku" : parts[0] === "lane" ? "lane" : "skus";
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === (page === "sku" ? "skus" : page)) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const current = newView(view); // a render still awaiting for an earlier navigation draws nothing
  const context = { session, refreshInfo, current };
  if (page === "sku") await renderSku(view, context, parts[1]);
  else if (page === "lane") await renderLane(view, context);
  else await renderCatalogue(view, context, params);
  if (!current()) return;
  const heading = view.querySelector("h1");
  if (heading && focusHeading) { // after a navigation, keyboard and screen-reader users start at the new page
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

function setUpKeyForm() {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  input.value = getKey();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    clearAlert();
    await loadSession();
    if (session.role) showAlert(`Key accepted: role ${session.role}.`, "info");
    await route(false);
  });
  document.getElementById("key-forget").addEventListener("click", async () => {
    input.value = "";
    setKey("");
    clearAlert();
    await loadSession();
    await route(false);
  });
}

async function start() {
  setUpKeyForm();
  window.addEventListener("hashchange", () => {
    alertOnNavigation();
    route();
  });
  await Promise.all([loadSession(), refreshInfo()]);
  await route(false);
  document.body.dataset.ready = "true"; // for tests and scripts: the first page is drawn
}

start();
