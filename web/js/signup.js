// Sign-up, then the confirmation code. Locally, cognito-local sends no e-mail: the dev server
// reads the code from its data and the page shows it, marked as a local-only convenience.
import { confirmSignUp, explain, signUp } from "./cognito.js";
import { config } from "./config.js";
import { $, busy, flash, status } from "./page.js";
import { PENDING_SIGN_UP } from "./session.js";

const statusElement = $("#status");

async function showLocalCode(email) {
  const { localConfirmationCodeUrl } = await config();
  if (!localConfirmationCodeUrl) return; // deployed: the code arrives by e-mail
  const url = `${localConfirmationCodeUrl}?username=${encodeURIComponent(email)}`;
  // cognito-local stores the code a moment after it answers SignUp.
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const response = await fetch(url, { cache: "no-store" });
    if (response.ok) {
      $("#local-code-value").textContent = (await response.json()).code;
      $("#local-code").hidden = false;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function showConfirmStep(email) {
  $("#sign-up").hidden = true;
  $("#confirm-email").textContent = email;
  $("#confirm-step").hidden = false;
  $("#confirm-title").focus();
  showLocalCode(email);
}

$("#sign-up").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const email = form.email.value.trim();
  await busy(form.querySelector("button"), async () => {
    try {
      await signUp(email, form.password.value);
      sessionStorage.setItem(PENDING_SIGN_UP, email);
      status(statusElement, "Account created: one step left.", "ok");
      showConfirmStep(email);
    } catch (error) {
      status(statusElement, explain(error), "error");
    }
  });
});

$("#confirm").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const email = sessionStorage.getItem(PENDING_SIGN_UP);
  await busy(form.querySelector("button"), async () => {
    status(statusElement, "Confirming…", "ok");
    try {
      await confirmSignUp(email, form.code.value.trim());
      sessionStorage.removeItem(PENDING_SIGN_UP);
      sessionStorage.setItem("sign-in-email", email);
      flash("Your e-mail address is confirmed: sign in.");
      location.assign("/signin");
    } catch (error) {
      status(statusElement, explain(error), "error");
    }
  });
});

// Back from the sign-in page of an account that is not confirmed yet.
const pending = sessionStorage.getItem(PENDING_SIGN_UP);
if (location.hash === "#confirm" && pending) showConfirmStep(pending);
