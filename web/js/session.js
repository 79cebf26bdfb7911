// The signed-in user's tokens, in sessionStorage: they last as long as the tab, never go in a
// URL, and are refreshed with the refresh token shortly before the ID token expires.
import { refresh } from "./cognito.js";

const KEY = "billing-session";
const EARLY_SECONDS = 60;
// The e-mail address of a sign-up waiting for its confirmation code.
export const PENDING_SIGN_UP = "pending-sign-up";

function claimsOf(jwt) {
  const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

export function saveSession(result, previous = null) {
  const claims = claimsOf(result.IdToken);
  sessionStorage.setItem(KEY, JSON.stringify({
    idToken: result.IdToken,
    // A refresh answers no new refresh token: keep the one we have.
    refreshToken: result.RefreshToken ?? previous?.refreshToken,
    expiresAt: claims.exp,
    email: claims.email,
  }));
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}

// A valid ID token for the API, refreshed when about to expire; null when signed out.
export async function idToken() {
  const current = session();
  if (!current) return null;
  if (current.expiresAt - EARLY_SECONDS > Date.now() / 1000) return current.idToken;
  try {
    saveSession(await refresh(current.refreshToken), current);
    return session().idToken;
  } catch {
    signOut();
    return null;
  }
}
