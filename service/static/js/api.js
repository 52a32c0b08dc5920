// Talking to the skulens API: the key from sessionStorage as X-API-Key, errors in one shape.

const KEY_STORAGE = "skulens.apiKey";
export const ROLES = ["checkout", "merchandiser", "admin"];

export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

function keyHeaders() {
  const key = getKey();
  return key ? { "X-API-Key": key } : {};
}

/** An API answer that is not 2xx: status, code and the server's message. */
export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** What to tell the user, with what to do about 401 and 403. */
  explain() {
    if (this.status === 401) {
      return `Not signed in (401): ${this.message}. Enter a valid API key at the top of the page.`;
    }
    if (this.status === 403) return `Not allowed (403): ${this.message}.`;
    if (this.status === 0) return `The server cannot be reached: ${this.message}`;
    return `${this.message} (${this.status} ${this.code})`;
  }
}

async function failureFrom(response) {
  let code = "http_error";
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch {
    // not JSON: keep the status text
  }
  return new ApiFailure(response.status, code, message);
}

/** fetch with the key (and ``headers``); JSON answers parsed; ``raw`` answers the Response itself. */
export async function api(path, { method = "GET", json, body, raw = false, headers: extra = {} } = {}) {
  const headers = { ...extra, ...keyHeaders() };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (error) {
    throw new ApiFailure(0, "network", String(error.message || error));
  }
  if (!response.ok) throw await failureFrom(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** A multipart POST/PUT with upload progress (fetch has none): resolves to the parsed JSON answer. */
export function upload(path, form, { method = "POST", onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path);
    for (const [name, value] of Object.entries(keyHeaders())) xhr.setRequestHeader(name, value);
    xhr.responseType = "json";
    if (onProgress) xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded / e.total));
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else {
        const error = body && body.error ? body.error : { code: "http_error", message: xhr.statusText };
        reject(new ApiFailure(xhr.status, error.code, error.message));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiFailure(0, "network", "the upload failed")));
    xhr.send(form);
  });
}

/** The role of the current key (GET /v1/whoami): {role, keys_required}, or an ApiFailure. */
export async function whoami() {
  return api("/v1/whoami");
}

export function allows(role, needed) {
  return role !== null && ROLES.indexOf(role) >= ROLES.indexOf(needed);
}

const imageUrls = new Set(); // object URLs made by imageUrl and not yet revoked

/** An image (thumbnail when ``size``) as an object URL: <img src> cannot send the key. The URL holds
 * the image's bytes until revoked: ``revokeImageUrls`` when the view is replaced. */
export async function imageUrl(sku, imageId, size) {
  const query = size ? `?size=${size}` : "";
  const response = await api(`/v1/skus/${encodeURIComponent(sku)}/images/${imageId}${query}`, { raw: true });
  const url = URL.createObjectURL(await response.blob());
  imageUrls.add(url);
  return url;
}

/** Revoke one object URL made by imageUrl (an image that arrived for a view already replaced). */
export function revokeImageUrl(url) {
  URL.revokeObjectURL(url);
  imageUrls.delete(url);
}

/** Revoke every object URL made by imageUrl (the view that showed them is being replaced). */
export function revokeImageUrls() {
  for (const url of imageUrls) URL.revokeObjectURL(url);
  imageUrls.clear();
}
