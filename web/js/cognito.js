// Amazon Cognito's user pool API, called from the browser as the AWS SDKs call it: POST with
// X-Amz-Target and a JSON body, no credentials (these operations take the app client id).
import { config } from "./config.js";

export class CognitoError extends Error {
  constructor(type, message) {
    super(message || type);
    this.type = type;
  }
}

async function call(operation, body) {
  const { cognitoEndpoint, region } = await config();
  const url = cognitoEndpoint ?? `https://cognito-idp.${region}.amazonaws.com/`;
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-amz-json-1.1",
      "X-Amz-Target": `AWSCognitoIdentityProviderService.${operation}`,
    },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    // AWS may prefix the type with a namespace: "com.amazonaws...#NotAuthorizedException".
    const type = String(answer.__type ?? `HTTP ${response.status}`).split("#").pop();
    throw new CognitoError(type, answer.message);
  }
  return answer;
}

// The e-mail address is the username: one thing to remember.
export async function signUp(email, password) {
  const { userPoolClientId } = await config();
  return call("SignUp", {
    ClientId: userPoolClientId,
    Username: email,
    Password: password,
    UserAttributes: [{ Name: "email", Value: email }],
  });
}

export async function confirmSignUp(email, code) {
  const { userPoolClientId } = await config();
  return call("ConfirmSignUp", { ClientId: userPoolClientId, Username: email, ConfirmationCode: code });
}

async function initiateAuth(flow, parameters) {
  const { userPoolClientId } = await config();
  const answer = await call("InitiateAuth", {
    ClientId: userPoolClientId,
    AuthFlow: flow,
    AuthParameters: parameters,
  });
  if (!answer.AuthenticationResult) {
    throw new CognitoError("ChallengeNotSupported",
      `This site cannot answer the ${answer.ChallengeName} challenge.`);
  }
  return answer.AuthenticationResult;
}

export function signIn(email, password) {
  return initiateAuth("USER_PASSWORD_AUTH", { USERNAME: email, PASSWORD: password });
}

export function refresh(refreshToken) {
  return initiateAuth("REFRESH_TOKEN_AUTH", { REFRESH_TOKEN: refreshToken });
}

// What to tell a person about a Cognito error.
export function explain(error) {
  const messages = {
    NotAuthorizedException: "Incorrect e-mail address or password.",
    UserNotFoundException: "Incorrect e-mail address or password.",
    UsernameExistsException: "An account with this e-mail address exists already: sign in instead.",
    CodeMismatchException: "That code is not the one we sent. Check it and try again.",
    ExpiredCodeException: "That code has expired.",
    UserNotConfirmedException: "This account is not confirmed yet.",
    TooManyRequestsException: "Too many attempts: wait a moment and try again.",
  };
  if (error instanceof CognitoError) return messages[error.type] ?? error.message;
  return `The sign-in service could not be reached (${error.message}).`;
}
