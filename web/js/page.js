// What every page does: the header's signed-in state, status messages, sign-out, and the
// way back to the sign-in page.
import { SignInNeeded } from "./api.js";
import { session, signOut } from "./session.js";

export function $(selector) {
  return document.querySelector(selector);
}

// Shows a message in a live region (screen readers announce it). kind: "ok" or "error".
export function status(element, message, kind = "ok") {
  element.className = `status ${kind}`;
  element.textContent = message;
}

export function el(tag, text, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

// Disables a button while its action runs, so it cannot be sent twice.
export async function busy(button, action) {
  button.disabled = true;
  try {
    return await action();
  } finally {
    button.disabled = false;
  }
}

// A message for the next page, shown in its #flash or #status element.
export function flash(message) {
  sessionStorage.setItem("flash", message);
}

// A page of this site named by the query string, or the fallback: never another origin
// ("//evil.example" and "/\\evil.example" are other origins to a browser).
export function localPath(value, fallback) {
  if (!value) return fallback;
  const url = new URL(value, location.origin);
  return url.origin === location.origin ? url.pathname + url.search + url.hash : fallback;
}

export function goToSignIn() {
  const next = location.pathname + location.search;
  location.assign(`/signin?next=${encodeURIComponent(next)}`);
}

// Runs a page's action; a SignInNeeded leads to the sign-in page, anything else is shown.
export async function attempt(statusElement, action) {
  try {
    return await action();
  } catch (error) {
    if (error instanceof SignInNeeded) {
      goToSignIn();
      return undefined;
    }
    status(statusElement, error.message, "error");
    return undefined;
  }
}

function header() {
  const current = session();
  for (const node of document.querySelectorAll("[data-signed-in]")) node.hidden = !current;
  for (const node of document.querySelectorAll("[data-signed-out]")) node.hidden = !!current;
  const who = $("#who");
  if (who && current) who.textContent = current.email;
  for (const link of document.querySelectorAll("header nav a")) {
    if (link.getAttribute("href") === location.pathname) link.setAttribute("aria-current", "page");
  }
  $("#sign-out")?.addEventListener("click", () => {
    signOut();
    location.assign("/");
  });
}

function showFlash() {
  const message = sessionStorage.getItem("flash");
  const target = $("#flash") ?? $("#status");
  if (message && target) {
    sessionStorage.removeItem("flash");
    status(target, message, "ok");
  }
}

header();
showFlash();
