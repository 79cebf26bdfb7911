// The account page: GET /me (plan, subscriptions, API key, usage when metered), the key's
// rotation, the product API tried with the key, the Billing Portal (POST /portal) and account deletion (DELETE /me).
import { signedIn } from "./api.js";
import { config } from "./config.js";
import { $, attempt, busy, el, flash, goToSignIn, status } from "./page.js";
import { session, signOut } from "./session.js";

const statusElement = $("#status");
let keyValue = null;

function day(unixSeconds) {
  return unixSeconds ? new Date(unixSeconds * 1000).toLocaleDateString("en", { dateStyle: "medium" }) : "–";
}

function showSubscriptions(subscriptions) {
  const rows = subscriptions.map((s) => {
    const row = el("tr");
    const status = s.cancel_at_period_end ? `${s.status} (ends at period end)` : s.status;
    row.append(el("td", s.plan ?? "–"), el("td", status), el("td", day(s.current_period_end)));
    return row;
  });
  $("#subscriptions tbody").replaceChildren(...rows);
  $("#subscriptions").hidden = !rows.length;
  $("#no-subscriptions").hidden = rows.length > 0;
}

function showKey(key) {
  $("#no-key").hidden = !!key;
  $("#key").hidden = !key;
  keyValue = key?.value ?? null;
  if (!key) return;
  $("#key-id").textContent = key.id;
  $("#key-usage-plan").textContent = key.usage_plan ?? "none";
  $("#key-enabled").textContent = key.enabled ? "yes" : "no";
  for (const button of ["#show-key", "#copy-key", "#try-api"]) $(button).disabled = !keyValue;
  if (!keyValue) {
    // KEY_VALUE_DISCLOSURE=once: the value was shown when the key was made, never again.
    $("#key-value").textContent = key.disclosure === "once" && key.prefix
      ? `${key.prefix}… (shown once, when it was made)`
      : "unavailable just now: reload the page";
  }
}

// GET /me's `usage`: per metered price of the plan, this period's calls that Stripe's meter
// has and those counted on the key that the usage reporter has not sent yet. Empty on flat
// plans.
function showUsage(usage) {
  const entries = Array.isArray(usage) ? usage : [];
  $("#usage").hidden = entries.length === 0;
  const count = (n) => n.toLocaleString("en");
  $("#usage tbody").replaceChildren(...entries.map((entry) => {
    const row = el("tr");
    const until = entry.period_end ? day(entry.period_end) : "now";
    row.append(
      el("td", entry.price_id ?? entry.meter),
      el("td", `${day(entry.period_start)} – ${until}`),
      el("td", count(entry.reported)),
      el("td", count(entry.not_yet_reported)),
      el("td", count(entry.reported + entry.not_yet_reported)),
    );
    return row;
  }));
}

async function load() {
  if (!session()) {
    goToSignIn();
    return;
  }
  await attempt(statusElement, async () => {
    const me = await signedIn("GET", "/me");
    $("#plan").textContent = me.plan;
    showSubscriptions(me.subscriptions ?? []);
    showKey(me.api_key);
    showUsage(me.usage);
    $("#account").removeAttribute("aria-busy");
  });
}

$("#show-key").addEventListener("click", (event) => {
  const shown = event.target.getAttribute("aria-expanded") === "true";
  $("#key-value").textContent = shown ? "hidden" : keyValue;
  event.target.setAttribute("aria-expanded", String(!shown));
  event.target.textContent = shown ? "Show key" : "Hide key";
});

$("#copy-key").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(keyValue);
    status(statusElement, "API key copied to the clipboard.", "ok");
  } catch {
    status(statusElement, "The browser did not allow copying: show the key and copy it by hand.", "error");
  }
});

// POST /me/api-key/rotate: a new key on the same plan, the old one disabled at once. The new
// value is shown now: with KEY_VALUE_DISCLOSURE=once this answer is the only one carrying it.
$("#rotate-key").addEventListener("click", (event) => busy(event.target, () =>
  attempt(statusElement, async () => {
    const { api_key: key } = await signedIn("POST", "/me/api-key/rotate", {});
    showKey(key);
    $("#key-value").textContent = keyValue;
    $("#show-key").setAttribute("aria-expanded", "true");
    $("#show-key").textContent = "Hide key";
    status(statusElement, "New API key made: the old one no longer works.", "ok");
  })));

$("#try-api").addEventListener("click", (event) => busy(event.target, async () => {
  const { productApiHelloUrl } = await config();
  let response;
  try {
    response = await fetch(productApiHelloUrl, { headers: { "x-api-key": keyValue } });
  } catch (error) {
    status(statusElement, `The API could not be reached (${error.message}).`, "error");
    return;
  }
  const answer = await response.json().catch(() => null);
  $("#try-status").textContent = `HTTP ${response.status}`;
  $("#try-answer").textContent = JSON.stringify(answer?.quota ? { message: answer.message } : answer, null, 2);
  const quota = answer?.quota;
  if (quota) {
    const period = quota.period ? ` this ${quota.period.toLowerCase()}` : "";
    $("#try-quota").textContent = `${quota.remaining.toLocaleString("en")} of ${quota.limit.toLocaleString("en")} calls left${period}.`;
  }
  $("#try-status").hidden = $("#try-answer").hidden = false;
  $("#try-quota").hidden = !quota;
}));

$("#manage-billing").addEventListener("click", (event) => busy(event.target, () =>
  attempt(statusElement, async () => {
    const { url } = await signedIn("POST", "/portal", { return_path: "/account" });
    location.assign(url);
  })));

$("#delete-account").addEventListener("click", () => {
  $("#confirm-delete").returnValue = ""; // Escape closes it without a value
  $("#confirm-delete").showModal();
});

$("#confirm-delete").addEventListener("close", async (event) => {
  if (event.target.returnValue !== "delete") return;
  await attempt(statusElement, async () => {
    status(statusElement, "Deleting your account…", "ok");
    await signedIn("DELETE", "/me");
    signOut();
    flash("Your account is deleted: your subscriptions ended and your API key no longer works.");
    location.assign("/");
  });
});

config().then(({ productApiHelloUrl }) => {
  $("#hello-url").textContent = productApiHelloUrl;
});
load();
