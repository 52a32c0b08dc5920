// A checkout answer drawn: the photo with each item's box and label, the basket's lines and total,
// and what needs attention (items are numbered from 1 here; the API's index counts from 0).

import { el } from "./ui.js";

const COLOURS = { known: "#1e7d32", attention: "#d35400" };

function itemLabel(item, index) {
  return `${index + 1}. ${item.sku ? item.name || item.sku : "unknown"}`;
}

export async function drawPhoto(canvas, blob, items, attention) {
  const bitmap = await createImageBitmap(blob); // EXIF orientation applied, as the server does
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const g = canvas.getContext("2d");
  g.drawImage(bitmap, 0, 0);
  const line = Math.max(2, Math.round(bitmap.width / 300));
  const fontSize = Math.max(14, Math.round(bitmap.width / 45));
  g.font = `600 ${fontSize}px system-ui, sans-serif`;
  g.textBaseline = "top";
  items.forEach((item, index) => {
    if (!item.box) return;
    const [x0, y0, x1, y1] = item.box;
    const colour = attention.has(index) ? COLOURS.attention : COLOURS.known;
    g.lineWidth = line;
    g.strokeStyle = colour;
    g.strokeRect(x0, y0, x1 - x0, y1 - y0);
    const text = itemLabel(item, index);
    const width = g.measureText(text).width + 2 * line;
    const top = y0 >= fontSize + 2 * line ? y0 - fontSize - 2 * line : y0;
    g.fillStyle = colour;
    g.fillRect(x0, top, width, fontSize + 2 * line);
    g.fillStyle = "#fff";
    g.fillText(text, x0 + line, top + line);
  });
}

/** Items are numbered from 1 on the page (the API's index is from 0): said in the page's words. */
function attentionText(a, items) {
  if (a.index === null) return a.message;
  const item = items[a.index];
  if (a.reason === "unknown") {
    return `Item ${a.index + 1}: not recognised (best score ${item.score.toFixed(3)} is below the threshold); ` +
      "a person must identify it.";
  }
  if (a.reason === "no_price") return `Item ${a.index + 1}: ${item.name || item.sku} has no price in the catalogue.`;
  return `Item ${a.index + 1}: ${a.message}`;
}

export function basket(out, attention) {
  const lines = out.lines.map((l) => el("tr", {}, el("td", {}, l.name, el("br"), el("span", { class: "hint" }, l.sku)),
    el("td", { class: "num" }, String(l.quantity)), el("td", { class: "num optional" }, l.unit_price),
    el("td", { class: "num" }, l.amount)));
  const notes = out.needs_attention.map((a) => el("li", {}, attentionText(a, out.items)));
  const items = out.items.map((item, index) => el("li", { class: attention.has(index) ? "attention" : "" },
    itemLabel(item, index).replace(/^\d+\. /, ""),
    item.sku ? ` (${item.sku})` : "", item.unit_price ? ` · ${item.unit_price} ${out.currency}` : "",
    el("span", { class: "hint" }, ` · score ${item.score.toFixed(3)}`)));
  return el("section", { "aria-labelledby": "basket-title", id: "basket" },
    el("h2", { id: "basket-title" }, "Basket"),
    el("p", { class: "total" }, "Total ", el("output", { id: "total" }, `${out.total} ${out.currency}`)),
    notes.length ? el("div", { class: "attention", id: "needs-attention" },
      el("strong", {}, `Needs attention (${notes.length}), left out of the total:`), el("ul", {}, notes)) : null,
    lines.length ? el("div", { class: "table-wrap" }, el("table", { id: "basket-lines" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Product"), el("th", { scope: "col", class: "num" }, "Qty"),
        el("th", { scope: "col", class: "num optional" }, "Unit price"), el("th", { scope: "col", class: "num" }, "Amount"))),
      el("tbody", {}, lines))) : el("p", {}, "No priced item recognised."),
    el("h3", {}, `Items found (${out.items.length})`), el("ol", { id: "items" }, items),
    el("p", { class: "hint" }, `Segmentation: ${out.segmentation ?? "crops"}${out.note ? ` — ${out.note}` : ""}. ` +
      `Model ${out.model_version}.`));
}
