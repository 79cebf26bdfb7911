// Sign-in with the user pool (InitiateAuth, USER_PASSWORD_AUTH), then on to where the user was
// going (?next=, a path of this site only).
import { explain, signIn } from "./cognito.js";
import { $, busy, localPath, status } from "./page.js";
import { PENDING_SIGN_UP, saveSession } from "./session.js";

const statusElement = $("#status");
const form = $("#sign-in");
const next = localPath(new URLSearchParams(location.search).get("next"), "/account");

form.email.value = sessionStorage.getItem("sign-in-email") ?? "";
if (form.email.value) form.password.focus();

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = form.email.value.trim();
  await busy(form.querySelector("button"), async () => {
    try {
      saveSession(await signIn(email, form.password.value));
      sessionStorage.removeItem("sign-in-email");
      location.assign(next);
    } catch (error) {
      status(statusElement, explain(error), "error");
      if (error.type === "UserNotConfirmedException") {
        sessionStorage.setItem(PENDING_SIGN_UP, email);
        $("#confirm-link").hidden = false;
      }
    }
  });
});
