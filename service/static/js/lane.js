// A lane: a counter photo from the camera (getUserMedia) or a file, POST /v1/checkout, the photo with
// each item's box and label, the basket and its total, what needs attention; the photo can be
// stored as the lane's empty-counter background; the lane's expected item size (item_area) is shown and,
// by a merchandiser, set (GET /v1/lanes/{lane}, PUT /v1/lanes/{lane}/settings).

import { ApiFailure, api, upload } from "./api.js";
import { basket, drawPhoto } from "./basket.js";
import { attempt, clearAlert, confirmAction, el, field, gate, showAlert } from "./ui.js";

const LANE_PATTERN = "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}";
const LANES_STORAGE = "skulens.lanes";
// item_area: 0 or 0.004-0.5, as the server checks it (its 422 explains a refusal); said in the page's hints.
const ITEM_AREA_MIN = 0.004;
const ITEM_AREA_MAX = 0.5;
let knownDefaultArea = null; // default_item_area from the last lane the server described (a 404 has none)

function recentLanes() {
  try {
    const lanes = JSON.parse(localStorage.getItem(LANES_STORAGE) || "[]");
    return Array.isArray(lanes) ? lanes.filter((l) => typeof l === "string") : [];
  } catch {
    return [];
  }
}

function rememberLane(lane) {
  const lanes = [lane, ...recentLanes().filter((l) => l !== lane)].slice(0, 10);
  localStorage.setItem(LANES_STORAGE, JSON.stringify(lanes));
}

/** An item_area as a percentage of the photo: 0.023 -> "2.3 %". */
function percent(area) {
  return `${Number((area * 100).toFixed(2))} %`;
}

/** What the lane's segmenter expects of an item, as a sentence (``out``: GET /v1/lanes/{lane}, or null
 * when the lane has nothing stored). */
function itemAreaText(lane, out) {
  if (out && out.item_area === 0) {
    return `Item area: 0 (set for lane ${lane}): no expected item size; touching items are split by their ` +
      "shape alone.";
  }
  if (out && out.item_area !== null) {
    return `Item area: ${out.item_area} (set for lane ${lane}): a typical item covers ${percent(out.item_area)} ` +
      "of its photos.";
  }
  const fallback = out ? out.default_item_area : knownDefaultArea;
  if (fallback === null) return `Item area: default; nothing is stored for lane ${lane} yet.`;
  return `Item area: default (${fallback}): lane ${lane} has none of its own; a typical item is taken to cover ` +
    `${percent(fallback)} of its photos.`;
}

export async function renderLane(view, { session }) {
  const lanes = recentLanes();
  const laneList = el("datalist", { id: "lane-list" }, lanes.map((l) => el("option", { value: l })));
  const lane = field("Lane", { name: "lane", required: true, pattern: LANE_PATTERN, maxlength: 64,
    value: lanes[0] || "1", list: "lane-list", autocomplete: "off" });
  const backgroundStatus = el("p", { id: "background-status", class: "hint", "aria-live": "polite" });
  const itemAreaStatus = el("p", { id: "item-area-status", class: "hint", "aria-live": "polite" });
  const itemArea = field("Item area (share of the photo)", { type: "number", name: "item_area", min: 0,
    max: ITEM_AREA_MAX, step: "any", inputmode: "decimal", autocomplete: "off", id: "item-area" });
  const saveItemArea = el("button", { type: "submit", id: "save-item-area" }, "Save item area");
  const useDefaultArea = el("button", { type: "button", class: "secondary", id: "default-item-area" },
    "Use the default");
  const itemAreaProblem = el("p", { class: "why", id: "item-area-problem", hidden: true }); // beside the input
  const itemAreaWhy = gate(saveItemArea, session, "merchandiser", "set a lane's item area");
  if (itemAreaWhy) { // one reason, said once, for the three controls
    for (const control of [itemArea.input, useDefaultArea]) {
      control.disabled = true;
      control.setAttribute("aria-describedby", itemAreaWhy.id);
    }
  }
  const itemAreaForm = el("form", { class: "card", id: "lane-settings", "aria-labelledby": "settings-title",
    novalidate: true }, // a value out of range is sent all the same: the server's 422 says what is allowed
    el("h2", { id: "settings-title" }, "Expected item size"), itemAreaStatus,
    el("div", { class: "row" }, itemArea.wrap, saveItemArea, useDefaultArea), itemAreaProblem, itemAreaWhy,
    el("p", { class: "hint" }, `The share of the lane's photos a typical item covers, from ${ITEM_AREA_MIN} to ` +
      `${ITEM_AREA_MAX} (a 200×180 px item in a 960×720 photo: 0.052), or 0 for no expected size: the ` +
      "segmenter splits touching items by it."));
  const file = field("Upload a counter photo", { type: "file", accept: "image/*", name: "photo" });
  const startCamera = el("button", { type: "button", class: "secondary" }, "Start camera");
  const takePhoto = el("button", { type: "button", hidden: true }, "Take photo");
  const stopCamera = el("button", { type: "button", class: "secondary", hidden: true }, "Stop camera");
  const video = el("video", { playsinline: true, muted: true, "aria-label": "Camera preview", hidden: true });
  const recognise = el("button", { type: "button", disabled: true, id: "recognise" }, "Recognise again");
  const saveBackground = el("button", { type: "button", class: "secondary", disabled: true, id: "set-background" },
    "Use this photo as the lane's empty-counter background");
  const checkoutWhy = gate(recognise, session, "checkout", "check out");
  const backgroundWhy = gate(saveBackground, session, "merchandiser", "set a lane's background");
  const canvas = el("canvas", { id: "photo", role: "img", "aria-label": "The counter photo with each item's box" });
  const photoWrap = el("div", { class: "photo-wrap", hidden: true }, canvas);
  const result = el("div", { id: "result" });
  let photo = null; // {blob, name}
  let stream = null;

  const cameraWhy = navigator.mediaDevices && navigator.mediaDevices.getUserMedia ? null
    : el("p", { class: "why" }, "No camera here: the browser offers one only on HTTPS or localhost pages.");
  if (cameraWhy) startCamera.disabled = true;

  const laneId = () => lane.input.value.trim();
  const lanePath = (id) => `/v1/lanes/${encodeURIComponent(id)}`;

  let typed = false; // the item area was typed since the page last filled it in: an answer does not replace it
  itemArea.input.addEventListener("input", () => { typed = true; });

  /** Show what is stored for lane ``id`` (``out``: GET /v1/lanes/{lane}; null: nothing is); ``stored``:
   * ``out`` is the answer to the PUT of what was typed. */
  function showLaneView(id, out, stored = false) {
    if (out) knownDefaultArea = out.default_item_area;
    const background = out && out.background;
    backgroundStatus.textContent = background
      ? `Lane ${id} has an empty-counter background (${background.width}×${background.height}); ` +
        "photos of that size are segmented against it."
      : `Lane ${id} has no background: its photos use the plain-counter fallback.`;
    itemAreaStatus.textContent = itemAreaText(id, out);
    if (stored) itemAreaIs(null);
    if (stored || !typed) {
      itemArea.input.value = out && out.item_area !== null ? String(out.item_area) : "";
      typed = false;
    }
    itemArea.input.placeholder = knownDefaultArea === null ? "default" : `default (${knownDefaultArea})`;
  }

  let asked = 0; // the latest lane asked about: an earlier lane's late answer shows nothing
  async function showLane() {
    asked += 1;
    const mine = asked;
    if (!lane.input.checkValidity()) {
      backgroundStatus.textContent = "Lane ids are 1-64 letters, digits, '.', '_' or '-'.";
      itemAreaStatus.textContent = "";
      return;
    }
    const id = laneId();
    let out = null;
    try {
      out = await api(lanePath(id));
    } catch (error) {
      if (mine !== asked) return;
      if (!(error instanceof ApiFailure && error.code === "lane_not_found")) {
        const why = error instanceof ApiFailure ? error.explain() : String(error);
        backgroundStatus.textContent = `Background unknown: ${why}`;
        itemAreaStatus.textContent = `Item area unknown: ${why}`;
        return;
      }
    }
    if (mine === asked) showLaneView(id, out);
  }

  /** Say what is wrong with the item area typed (in the alert line and beside the input); null: nothing. */
  function itemAreaIs(problem) {
    itemAreaProblem.textContent = problem || "";
    itemAreaProblem.hidden = !problem;
    if (problem) {
      itemArea.input.setAttribute("aria-invalid", "true");
      showAlert(problem);
    } else {
      itemArea.input.removeAttribute("aria-invalid");
    }
  }

  /** PUT the lane's item_area (null: back to the default); the server's refusal (its 422) is shown. */
  async function storeItemArea(value) {
    if (!lane.input.reportValidity()) return;
    const id = laneId();
    let out;
    try {
      out = await api(`${lanePath(id)}/settings`, { method: "PUT", json: { item_area: value } });
    } catch (error) {
      itemAreaIs(error instanceof ApiFailure ? error.explain() : String(error)); // the value typed stays
      itemArea.input.focus();
      return;
    }
    asked += 1; // an earlier GET's answer, still to come, no longer shows
    showLaneView(out.lane, out, true);
    showAlert(out.item_area === null
      ? `Lane ${out.lane} is back on the default item area (${out.default_item_area}).`
      : `Lane ${out.lane}'s item area set to ${out.item_area}.`, "info");
  }

  async function runCheckout() {
    if (!photo || !lane.input.reportValidity()) return;
    if (recognise.disabled && checkoutWhy) {
      showAlert(checkoutWhy.textContent);
      return;
    }
    clearAlert();
    rememberLane(laneId());
    result.replaceChildren(el("p", { role: "status" }, "Recognising…"));
    const form = new FormData();
    form.append("photo", photo.blob, photo.name);
    form.append("lane", laneId());
    try {
      const out = await upload("/v1/checkout", form);
      const attention = new Set(out.needs_attention.filter((a) => a.index !== null).map((a) => a.index));
      await drawPhoto(canvas, photo.blob, out.items, attention);
      photoWrap.hidden = false;
      result.replaceChildren(basket(out, attention));
    } catch (error) {
      result.replaceChildren(el("p", {}, "No basket: see the message above."));
      showAlert(error);
    }
  }

  async function usePhoto(blob, name) {
    photo = { blob, name };
    if (!checkoutWhy) recognise.disabled = false;
    if (!backgroundWhy) saveBackground.disabled = false;
    await drawPhoto(canvas, blob, [], new Set());
    photoWrap.hidden = false;
    await runCheckout();
  }

  file.input.addEventListener("change", () => {
    if (file.input.files.length) usePhoto(file.input.files[0], file.input.files[0].name);
  });
  lane.input.addEventListener("change", () => showLane());
  recognise.addEventListener("click", () => runCheckout());
  startCamera.addEventListener("click", () => attempt(async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      throw new Error(`The camera could not be started: ${error.message || error.name}`);
    }
    video.srcObject = stream;
    await video.play();
    video.hidden = takePhoto.hidden = stopCamera.hidden = false;
    startCamera.hidden = true;
    takePhoto.focus();
  }));
  const stop = () => {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.hidden = takePhoto.hidden = stopCamera.hidden = true;
    startCamera.hidden = false;
  };
  stopCamera.addEventListener("click", stop);
  takePhoto.addEventListener("click", () => attempt(async () => {
    const grab = document.createElement("canvas");
    grab.width = video.videoWidth;
    grab.height = video.videoHeight;
    grab.getContext("2d").drawImage(video, 0, 0);
    const blob = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.92));
    await usePhoto(blob, "camera.jpg");
  }));
  saveBackground.addEventListener("click", async () => {
    if (!photo || !lane.input.reportValidity()) return;
    const ok = await confirmAction(`Store this photo as lane ${laneId()}'s empty-counter background? It replaces ` +
      "any earlier one; the counter in it should be empty.", "Use as background");
    if (!ok) return;
    const form = new FormData();
    form.append("image", photo.blob, photo.name);
    const out = await attempt(() => upload(`/v1/lanes/${encodeURIComponent(laneId())}/background`, form,
      { method: "PUT" }));
    if (out) {
      showAlert(`Lane ${out.lane}'s background stored (${out.width}×${out.height}).`, "info");
      showLane();
    }
  });
  itemAreaForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = itemArea.input.value.trim();
    const value = Number(text);
    if (itemArea.input.validity.badInput || text === "" || !Number.isFinite(value)) {
      itemAreaIs(`Enter the item area as a number: 0 (no expected item size) or from ${ITEM_AREA_MIN} to ` +
        `${ITEM_AREA_MAX}; or use the default.`);
      itemArea.input.focus();
      return;
    }
    storeItemArea(value); // out of range: the server's 422 says so
  });
  useDefaultArea.addEventListener("click", () => storeItemArea(null));
  window.addEventListener("hashchange", stop, { once: true });

  view.append(el("h1", {}, "Lane"),
    el("section", { class: "card", "aria-labelledby": "photo-title" },
      el("h2", { id: "photo-title" }, "Counter photo"),
      el("div", { class: "row" }, lane.wrap, laneList), backgroundStatus,
      el("div", { class: "row" }, file.wrap, startCamera, takePhoto, stopCamera), cameraWhy, video,
      el("div", { class: "row", style: "margin-top:.75rem" }, recognise, saveBackground), checkoutWhy, backgroundWhy),
    el("div", { class: "lane-grid" }, photoWrap, result),
    itemAreaForm); // a lane's setting, seldom changed: after the basket
  showLane();
}
