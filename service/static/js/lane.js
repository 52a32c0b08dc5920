// A lane: a counter photo from the camera (getUserMedia) or a file, POST /v1/checkout, the photo with
// each item's box and label, the basket and its total, what needs attention; the photo can be
// stored as the lane's empty-counter background.

import { ApiFailure, api, upload } from "./api.js";
import { basket, drawPhoto } from "./basket.js";
import { attempt, clearAlert, confirmAction, el, field, gate, showAlert } from "./ui.js";

const LANE_PATTERN = "[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}";
const LANES_STORAGE = "skulens.lanes";

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

export async function renderLane(view, { session }) {
  const lanes = recentLanes();
  const laneList = el("datalist", { id: "lane-list" }, lanes.map((l) => el("option", { value: l })));
  const lane = field("Lane", { name: "lane", required: true, pattern: LANE_PATTERN, maxlength: 64,
    value: lanes[0] || "1", list: "lane-list", autocomplete: "off" });
  const backgroundStatus = el("p", { id: "background-status", class: "hint", "aria-live": "polite" });
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
  async function showBackground() {
    if (!lane.input.checkValidity()) {
      backgroundStatus.textContent = "Lane ids are 1-64 letters, digits, '.', '_' or '-'.";
      return;
    }
    try {
      const response = await api(`/v1/lanes/${encodeURIComponent(laneId())}/background`, { raw: true });
      const size = `${response.headers.get("X-Background-Width")}×${response.headers.get("X-Background-Height")}`;
      backgroundStatus.textContent = `Lane ${laneId()} has an empty-counter background (${size}); ` +
        "photos of that size are segmented against it.";
    } catch (error) {
      backgroundStatus.textContent = error instanceof ApiFailure && error.status === 404
        ? `Lane ${laneId()} has no background: its photos use the plain-counter fallback.`
        : `Background unknown: ${error instanceof ApiFailure ? error.explain() : error}`;
    }
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
  lane.input.addEventListener("change", () => showBackground());
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
      showBackground();
    }
  });
  window.addEventListener("hashchange", stop, { once: true });

  view.append(el("h1", {}, "Lane"),
    el("section", { class: "card", "aria-labelledby": "photo-title" },
      el("h2", { id: "photo-title" }, "Counter photo"),
      el("div", { class: "row" }, lane.wrap, laneList), backgroundStatus,
      el("div", { class: "row" }, file.wrap, startCamera, takePhoto, stopCamera), cameraWhy, video,
      el("div", { class: "row", style: "margin-top:.75rem" }, recognise, saveBackground), checkoutWhy, backgroundWhy),
    el("div", { class: "lane-grid" }, photoWrap, result));
  showBackground();
}
