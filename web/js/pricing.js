// The pricing page, built from the catalogue (GET /plans, public). Choosing a plan starts
// Stripe Checkout (POST /checkout {lookup_key}) and follows its URL.
import { ApiError, publicGet, signedIn } from "./api.js";
import { $, attempt, busy, el, goToSignIn, status } from "./page.js";
import { session } from "./session.js";

const statusElement = $("#status");

// Stripe amounts are in the currency's smallest unit (cents; yen for JPY).
function money(amount, currency) {
  const format = new Intl.NumberFormat("en", { style: "currency", currency: currency.toUpperCase() });
  return format.format(amount / 10 ** format.resolvedOptions().maximumFractionDigits);
}

function every(plan) {
  return plan.interval_count === 1 ? plan.interval : `${plan.interval_count} ${plan.interval}s`;
}

function describe(plan) {
  if (plan.unit_amount === null) return { price: "Custom pricing", detail: `billed every ${every(plan)}` };
  const amount = money(plan.unit_amount, plan.currency);
  if (plan.metered) return { price: amount, detail: `per unit of usage, billed every ${every(plan)}` };
  return { price: amount, detail: `per ${every(plan)}` };
}

function planName(plan) {
  return plan.product_name ?? plan.plan.charAt(0).toUpperCase() + plan.plan.slice(1);
}

async function choose(plan, button) {
  if (!session()) {
    goToSignIn();
    return;
  }
  await busy(button, () => attempt(statusElement, async () => {
    status(statusElement, `Opening Stripe Checkout for ${planName(plan)}…`, "ok");
    try {
      const { url } = await signedIn("POST", "/checkout", { lookup_key: plan.lookup_key });
      location.assign(url);
    } catch (error) {
      if (error instanceof ApiError && error.status === 409) {
        throw new Error(`You have the ${planName(plan)} plan already: manage it from your account page.`);
      }
      throw error;
    }
  }));
}

function card(plan, currentPlan) {
  const name = planName(plan);
  const { price, detail } = describe(plan);
  const article = el("article", null, {
    class: "plan",
    "aria-labelledby": `plan-${plan.price_id}`,
    "data-lookup-key": plan.lookup_key,
  });
  article.append(el("h2", name, { id: `plan-${plan.price_id}` }));
  if (plan.plan === currentPlan) article.append(el("span", "Your plan", { class: "badge" }));
  article.append(el("p", price, { class: "price" }), el("p", detail));
  if (plan.trial_period_days) article.append(el("p", `${plan.trial_period_days}-day free trial`));
  if (plan.unit_amount === 0) {
    article.append(el("p", "Every account has it.", { class: "hint" }));
  } else if (plan.lookup_key && plan.plan !== currentPlan) {
    const button = el("button", `Choose ${name}`, { type: "button" });
    button.addEventListener("click", () => choose(plan, button));
    article.append(button);
  }
  return article;
}

async function load() {
  const container = $("#plans");
  let plans;
  try {
    ({ plans } = await publicGet("/plans"));
  } catch (error) {
    status(statusElement, `The plans could not be loaded: ${error.message}`, "error");
    container.removeAttribute("aria-busy");
    return;
  }
  // The plan the user has now, to mark it; the page works without it.
  const me = session() ? await signedIn("GET", "/me").catch(() => null) : null;
  container.replaceChildren(...plans.map((plan) => card(plan, me?.plan)));
  container.removeAttribute("aria-busy");
  if (!plans.length) status(statusElement, "No plan is on sale yet.", "error");
}

load();
