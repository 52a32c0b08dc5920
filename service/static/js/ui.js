// Small DOM helpers shared by the pages: elements, the alert line, the confirm dialog, role gating.

import { allows, revokeImageUrls } from "./api.js";

/** el("button", {class: "x", onclick: f}, "text", child...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let idCounter = 0;
export function uid(prefix) {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled input in a column: returns {wrap, input}. */
export function field(labelText, { tag = "input", grow = false, ...attrs } = {}) {
  const id = attrs.id || uid("f");
  const input = el(tag, { ...attrs, id });
  const wrap = el("div", { class: grow ? "field grow" : "field" }, el("label", { for: id }, labelText), input);
  return { wrap, input };
}

const alertBox = () => document.getElementById("alert");

/** Show an error (an ApiFailure explains itself) or a message; ``info`` for good news. An array is
 * shown as it is: strings as text, nodes (a link made with ``el``) as nodes. */
export function showAlert(message, kind = "error") {
  const box = alertBox();
  if (Array.isArray(message)) box.replaceChildren(...message);
  else box.textContent = typeof message === "string" ? message : message.explain ? message.explain() : String(message);
  box.className = kind === "info" ? "alert info" : "alert";
  box.hidden = false;
}

let pendingNotice = null;

/** Good news to show on the next page, after a navigation (which clears the alert line). */
export function noticeAfterNavigation(message) {
  pendingNotice = message;
}

/** On a navigation: clear the alert line, then show a pending notice. */
export function alertOnNavigation() {
  clearAlert();
  if (pendingNotice) showAlert(pendingNotice, "info");
  pendingNotice = null;
}

export function clearAlert() {
  const box = alertBox();
  box.hidden = true;
  box.textContent = "";
}

/** Run an action; an error goes to the alert line (unless ``current`` says the page that asked has
 * been replaced meanwhile). Answers the action's value, or undefined. */
export async function attempt(action, current = () => true) {
  try {
    return await action();
  } catch (error) {
    console.error(error);
    if (current()) showAlert(error);
    return undefined;
  }
}

let navigation = 0; // which drawing of the view is current; an earlier one, still awaiting, draws nothing

/** Start drawing ``view`` anew: its content is removed, the object URLs of its images revoked, and
 * every earlier drawing becomes stale. Answers ``current()``: whether this drawing is still the
 * latest; a page checks it after each await before touching the view. */
export function newView(view) {
  navigation += 1;
  const mine = navigation;
  revokeImageUrls();
  view.replaceChildren();
  return () => mine === navigation;
}

let question = 0; // the confirm dialog's current question; handlers of an earlier one answer false

/** The confirm dialog (<dialog>): resolves true when the user confirms. Answered from the events that
 * come at once (the form's submit with the button that sent it, the dialog's cancel on Escape), else
 * false when it closes (the close event comes later: a key pressed meanwhile must not find a stale
 * answer, and an earlier question's handlers never answer a later one). */
export function confirmAction(text, okLabel = "Delete") {
  const dialog = document.getElementById("confirm");
  if (dialog.open) return Promise.resolve(false);
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-ok").textContent = okLabel;
  const form = dialog.querySelector("form");
  const opener = document.activeElement;
  question += 1;
  const mine = question;
  return new Promise((resolve) => {
    let done = false;
    const finish = (confirmed) => {
      if (done) return;
      done = true;
      form.removeEventListener("submit", onSubmit);
      dialog.removeEventListener("cancel", onCancel);
      resolve(confirmed && mine === question);
    };
    const onSubmit = (event) => finish(event.submitter?.value === "ok");
    const onCancel = () => finish(false);
    const onClose = () => {
      if (mine === question && dialog.open) return; // an earlier question's late event: this one is open
      dialog.removeEventListener("close", onClose);
      finish(false);
      if (mine === question && opener && opener.isConnected) opener.focus(); // back where the user was
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener("cancel", onCancel);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

/** Disable ``control`` with a visible reason unless ``session.role`` allows ``needed``. */
export function gate(control, session, needed, doing) {
  if (allows(session.role, needed)) return null;
  control.disabled = true;
  const id = uid("why");
  const have = session.role ? `your key is a ${session.role} key` : "no valid API key is entered";
  const note = el("p", { class: "why", id }, `To ${doing} you need a ${needed} key; ${have}.`);
  control.setAttribute("aria-describedby", id);
  return note;
}
