// The billing API (template.yaml's BillingApi): JSON in, JSON out, the ID token as a bearer
// token. Errors come as {"error": {"code", "message"}} from the functions, or {"message"} from
// API Gateway itself (401, 5xx).
import { config } from "./config.js";
import { idToken, signOut } from "./session.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Thrown when the user must sign in (again): page.js sends them to the sign-in page.
export class SignInNeeded extends Error {}

async function request(method, path, { body, token } = {}) {
  const { apiUrl } = await config();
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl.replace(/\/$/, "") + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "unreachable", `The billing API could not be reached (${e.message}).`);
  }
  let answer = null;
  try {
    answer = JSON.parse(await response.text());
  } catch {
    // No JSON: an empty 204, or a proxy's HTML error page (the status says enough).
  }
  if (response.ok) return answer;
  if (response.status === 401 && token) {
    signOut();
    throw new SignInNeeded();
  }
  const error = answer?.error ?? { code: `http_${response.status}`, message: answer?.message };
  throw new ApiError(response.status, error.code, error.message || `HTTP ${response.status}`);
}

export async function signedIn(method, path, body) {
  const token = await idToken();
  if (!token) throw new SignInNeeded();
  return request(method, path, { body, token });
}

export function publicGet(path) {
  return request("GET", path);
}
