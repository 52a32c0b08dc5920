// One SKU: its reference photos as thumbnails, adding photos (drop or picker, with progress),
// editing name, price and attributes, deleting a photo or the whole SKU.

import { ApiFailure, api, imageUrl, revokeImageUrl, upload } from "./api.js";
import { attempt, confirmAction, el, field, gate, newView, noticeAfterNavigation, showAlert } from "./ui.js";

const THUMB_SIZE = 256;

function skuPath(sku) {
  return `/v1/skus/${encodeURIComponent(sku)}`;
}

function thumbnails(data, session, reload, current) {
  const list = el("ul", { class: "thumbs", id: "thumbs", "aria-label": "Reference photos" });
  for (const imageId of data.image_ids) {
    const img = el("img", { alt: `Reference photo ${imageId} of ${data.sku}`, "data-image-id": imageId });
    const remove = el("button", { type: "button", class: "danger",
      "aria-label": `Delete photo ${imageId}` }, "Delete photo");
    const why = gate(remove, session, "merchandiser", "delete a photo");
    remove.addEventListener("click", async () => {
      if (!(await confirmAction(`Delete reference photo ${imageId} of ${data.sku}? It cannot be undone.`))) return;
      const done = await attempt(() => api(`${skuPath(data.sku)}/images/${imageId}`, { method: "DELETE" }));
      if (done !== undefined) {
        showAlert(`Photo ${imageId} deleted.`, "info");
        reload();
      }
    });
    list.append(el("li", {}, img, el("span", { class: "hint" }, `Photo ${imageId}`), remove, why));
    imageUrl(data.sku, imageId, THUMB_SIZE).then((url) => {
      if (!current()) { // the view was replaced while it loaded
        revokeImageUrl(url);
        return;
      }
      img.src = url;
      img.dataset.loaded = "true";
    }, (error) => {
      img.alt = `Photo ${imageId} could not be loaded: ${error.message}`;
    });
  }
  return data.image_ids.length ? list : el("p", { id: "thumbs-empty" }, "No reference photos yet: add some below.");
}

function addPhotos(data, session, reload) {
  const picker = field("Choose photos", { type: "file", accept: "image/*", multiple: true, name: "photos" });
  const zone = el("div", { class: "dropzone", id: "dropzone" },
    el("p", {}, "Drop photos here, or"), picker.wrap);
  const progressList = el("ul", { class: "uploads", "aria-live": "polite", id: "uploads" });
  const why = gate(picker.input, session, "merchandiser", "add photos");

  async function send(files) {
    const images = [...files].filter((f) => f.type.startsWith("image/") || f.type === "");
    if (!images.length) {
      showAlert(`None of the ${files.length} dropped files is an image.`);
      return;
    }
    let added = 0;
    for (const file of images) { // one request per photo: a bad photo does not sink the others
      const bar = el("progress", { max: 1, value: 0, "aria-label": `Upload of ${file.name}` });
      const status = el("span", {}, "uploading…");
      progressList.append(el("li", {}, el("span", {}, file.name), bar, status));
      const form = new FormData();
      form.append("images", file, file.name);
      try {
        const out = await upload(`${skuPath(data.sku)}/images`, form, { onProgress: (p) => { bar.value = p; } });
        bar.value = 1;
        const already = out.already_present.length > 0;
        status.textContent = already ? "already a reference photo" : `added as photo ${out.image_ids.join(", ")}`;
        if (!already) added += 1;
      } catch (error) {
        status.textContent = error instanceof ApiFailure ? error.explain() : String(error);
        status.className = "why";
      }
    }
    if (added) reload(`${added} photo${added > 1 ? "s" : ""} added.`, progressList); // each file's outcome kept
  }

  picker.input.addEventListener("change", () => send(picker.input.files));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (!picker.input.disabled) zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (picker.input.disabled) showAlert(why.textContent);
    else send(event.dataTransfer.files);
  });
  return el("section", { class: "card", "aria-labelledby": "add-title" },
    el("h2", { id: "add-title" }, "Add photos"), zone, why, progressList);
}

/** An attribute's value as shown for editing: text as it is, null as nothing, numbers and booleans as JSON. */
function shown(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value);
}

function attributeRow(key = "", value = "") {
  const text = shown(value);
  const k = field("Attribute", { value: key, name: "attr-key", maxlength: 100 });
  const v = field("Value", { value: text, name: "attr-value", grow: true });
  const row = el("div", { class: "attr-row" }, k.wrap, v.wrap);
  row.dataset.original = JSON.stringify(value ?? null); // as received: null, number, boolean or text
  row.dataset.shown = text;
  row.append(el("button", { type: "button", class: "secondary", "aria-label": `Remove attribute ${key}`.trim(),
    onclick: () => row.remove() }, "Remove"));
  return row;
}

/** The attributes to send: a value the user did not change goes back exactly as received (null stays
 * null, a number a number); a changed or new one is the text typed. */
function readAttributes(rows) {
  const out = {};
  for (const row of rows.querySelectorAll(".attr-row")) {
    const [key, value] = [...row.querySelectorAll("input")].map((i) => i.value);
    if (!key.trim()) continue;
    out[key.trim()] = value === row.dataset.shown ? JSON.parse(row.dataset.original) : value;
  }
  return out;
}

function editForm(data, session, reload) {
  const name = field("Name", { name: "name", value: data.name, required: true, maxlength: 200, grow: true });
  const price = field(`Price (${data.currency})`, { name: "price", value: data.price ?? "", inputmode: "decimal",
    pattern: "[0-9]+(\\.[0-9]+)?", placeholder: "no price" });
  const rows = el("div", { id: "attributes" },
    Object.entries(data.attributes).map(([k, v]) => attributeRow(k, v)));
  const save = el("button", { type: "submit" }, "Save changes");
  const why = gate(save, session, "merchandiser", "edit a SKU");
  const form = el("form", { class: "card", "aria-labelledby": "edit-title" },
    el("h2", { id: "edit-title" }, "Details"), el("div", { class: "row" }, name.wrap, price.wrap),
    el("h3", {}, "Attributes"), rows,
    el("button", { type: "button", class: "secondary", onclick: () => {
      const row = attributeRow();
      rows.append(row);
      row.querySelector("input").focus();
    } }, "Add attribute"),
    el("div", { class: "row", style: "margin-top:1rem" }, save), why);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: name.input.value.trim(), price: price.input.value.trim() || null,
      attributes: readAttributes(rows) };
    const out = await attempt(() => api(skuPath(data.sku), { method: "PUT", json: body }));
    if (out) reload("Saved.");
  });
  return form;
}

function deleteSection(data, session, context) {
  const remove = el("button", { type: "button", class: "danger", id: "delete-sku" }, `Delete SKU ${data.sku}`);
  const why = gate(remove, session, "merchandiser", "delete a SKU");
  remove.addEventListener("click", async () => {
    const text = `Delete SKU ${data.sku} and all its ${data.image_count} reference photos? It cannot be undone.`;
    if (!(await confirmAction(text, "Delete SKU"))) return;
    const done = await attempt(() => api(skuPath(data.sku), { method: "DELETE" }));
    if (done !== undefined) {
      context.refreshInfo();
      noticeAfterNavigation(`SKU ${data.sku} deleted.`);
      location.hash = "#/skus";
    }
  });
  return el("section", { class: "card", "aria-labelledby": "danger-title" },
    el("h2", { id: "danger-title" }, "Delete"), remove, why);
}

export async function renderSku(view, context, sku) {
  const { session, current } = context;
  const back = el("p", {}, el("a", { href: "#/skus" }, "← Catalogue"));
  const data = await attempt(() => api(skuPath(sku)), current);
  if (!current()) return; // the user has gone elsewhere meanwhile: draw nothing
  if (!data) {
    view.append(back, el("h1", {}, `SKU ${sku}`), el("p", {}, "This SKU could not be loaded."));
    return;
  }
  const reload = async (message, uploads) => {
    context.refreshInfo();
    if (!current()) return; // this page was replaced while the change was made: leave the new one alone
    const scrollY = window.scrollY;
    const again = newView(view); // a new drawing of this page: an earlier reload still awaiting draws nothing
    await renderSku(view, { ...context, current: again }, sku);
    if (!again()) return;
    if (uploads) view.querySelector("#uploads")?.append(...uploads.children);
    window.scrollTo(0, scrollY);
    if (message) showAlert(message, "info");
  };
  const price = data.price === null ? "no price" : `${data.price} ${data.currency}`;
  view.append(back, el("h1", {}, `${data.name}`),
    el("p", { class: "hint", id: "sku-summary" }, `SKU ${data.sku} · ${price} · ${data.image_count} reference photos`),
    el("section", { "aria-labelledby": "photos-title" }, el("h2", { id: "photos-title" }, "Reference photos"),
      thumbnails(data, session, reload, current)),
    addPhotos(data, session, reload), editForm(data, session, reload), deleteSection(data, session, context));
}
