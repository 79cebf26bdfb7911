// Node.js peer of the Rust Stripe webhook Lambda (`POST /stripe/webhook`), for the benchmark.
// It does the same work as the Rust function for a `product.*` event: verify the signature,
// claim the event in DynamoDB, store the product document, mark the event done.
import Stripe from "stripe";
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import { CognitoIdentityProviderClient } from "@aws-sdk/client-cognito-identity-provider";
import { APIGatewayClient } from "@aws-sdk/client-api-gateway";
import { CloudFormationClient } from "@aws-sdk/client-cloudformation";

const MAX_EVENT_BYTES = 512 * 1024;
const LEASE_SECS = 30;
const EVENT_TTL_SECS = 35 * 24 * 60 * 60;

const TABLE_NAME = process.env.TABLE_NAME;
const LIVEMODE = (process.env.LIVEMODE ?? "false") === "true";
const WEBHOOK_SECRETS = (process.env.STRIPE_WEBHOOK_SECRETS ?? "")
  .split(",")
  .map((secret) => secret.trim())
  .filter((secret) => secret !== "");

// Clients are created once per execution environment and reused across invocations.
// The Rust function creates all of them at start; only DynamoDB is used for product events.
function stripeOptions() {
  if (!process.env.STRIPE_API_BASE) {
    return {};
  }
  const base = new URL(process.env.STRIPE_API_BASE);
  return {
    protocol: base.protocol.replace(":", ""),
    host: base.hostname,
    port: base.port || (base.protocol === "http:" ? 80 : 443),
  };
}
const stripe = new Stripe(process.env.STRIPE_SECRET_KEY, stripeOptions());

const awsConfig = { retryMode: "standard", maxAttempts: 3 };
const dynamo = new DynamoDBClient(awsConfig);
const cognito = new CognitoIdentityProviderClient(awsConfig);
const apiGateway = new APIGatewayClient(awsConfig);
const cloudFormation = new CloudFormationClient(awsConfig);

function respond(statusCode, body) {
  return {
    statusCode,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}

function verify(rawBody, signature) {
  for (const secret of WEBHOOK_SECRETS) {
    try {
      return stripe.webhooks.constructEvent(rawBody, signature, secret);
    } catch (err) {
      if (!(err instanceof Stripe.errors.StripeSignatureVerificationError)) {
        throw err;
      }
    }
  }
  return null;
}

export const handler = async (event) => {
  if (event.requestContext?.http?.method !== "POST") {
    return respond(405, { error: "method_not_allowed", message: "POST only" });
  }
  const rawBody = event.isBase64Encoded
    ? Buffer.from(event.body ?? "", "base64")
    : Buffer.from(event.body ?? "", "utf8");
  if (rawBody.length > MAX_EVENT_BYTES) {
    return respond(413, { error: "body_too_large", message: "event too large" });
  }

  let stripeEvent;
  try {
    stripeEvent = verify(rawBody, event.headers?.["stripe-signature"] ?? "");
  } catch (err) {
    console.log(JSON.stringify({ level: "WARN", message: "webhook refused: unparseable event" }));
    return respond(400, { error: "invalid_event", message: "the body is not a Stripe event we can read" });
  }
  if (stripeEvent === null) {
    console.log(JSON.stringify({ level: "WARN", message: "webhook refused: signature" }));
    return respond(400, {
      error: "invalid_signature",
      message: "the Stripe-Signature header does not verify",
    });
  }
  if (stripeEvent.livemode !== LIVEMODE) {
    console.log(
      JSON.stringify({ level: "WARN", event_id: stripeEvent.id, message: "webhook refused: livemode differs" }),
    );
    return respond(400, {
      error: "livemode_mismatch",
      message: "event livemode does not match this deployment",
    });
  }
  if (!stripeEvent.type.startsWith("product.")) {
    log(stripeEvent, "ignored");
    return respond(200, { received: true, outcome: "ignored" });
  }

  const now = Math.floor(Date.now() / 1000);
  const eventKey = { pk: { S: `EVENT#${stripeEvent.id}` }, sk: { S: "EVENT" } };

  let claimed;
  let previous;
  try {
    claimed = await claim(eventKey, now);
    if (!claimed) {
      const { Item } = await dynamo.send(
        new GetItemCommand({ TableName: TABLE_NAME, Key: eventKey, ConsistentRead: false }),
      );
      previous = Item;
    }
  } catch (err) {
    logFailure(stripeEvent, err);
    return respond(500, { error: "retry_later" });
  }
  if (!claimed) {
    if (previous?.status?.S === "done") {
      log(stripeEvent, "duplicate");
      return respond(200, { received: true, outcome: "duplicate" });
    }
    log(stripeEvent, "in_progress");
    return respond(409, { error: "in_progress", message: "this event is being applied; retry later" });
  }

  let outcome;
  try {
    outcome = await storeProduct(stripeEvent);
    await dynamo.send(
      new PutItemCommand({
        TableName: TABLE_NAME,
        Item: {
          ...eventKey,
          status: { S: "done" },
          expires_at: { N: String(now + EVENT_TTL_SECS) },
        },
      }),
    );
  } catch (err) {
    logFailure(stripeEvent, err);
    await release(eventKey);
    return respond(500, { error: "retry_later" });
  }
  log(stripeEvent, outcome);
  return respond(200, { received: true, outcome });
};

function log(stripeEvent, outcome) {
  console.log(JSON.stringify({ event_id: stripeEvent.id, event_type: stripeEvent.type, outcome }));
}

function logFailure(stripeEvent, err) {
  console.log(
    JSON.stringify({
      level: "ERROR",
      event_id: stripeEvent.id,
      event_type: stripeEvent.type,
      error: err.name,
      message: "event failed; Stripe will retry",
    }),
  );
}

// Takes the event: true if this delivery may apply it, false if another one has or is doing so.
async function claim(eventKey, now) {
  try {
    await dynamo.send(
      new PutItemCommand({
        TableName: TABLE_NAME,
        Item: {
          ...eventKey,
          status: { S: "processing" },
          lease_until: { N: String(now + LEASE_SECS) },
          expires_at: { N: String(now + EVENT_TTL_SECS) },
        },
        ConditionExpression: "attribute_not_exists(#pk) OR (#status = :processing AND #lease < :now)",
        ExpressionAttributeNames: { "#pk": "pk", "#status": "status", "#lease": "lease_until" },
        ExpressionAttributeValues: { ":processing": { S: "processing" }, ":now": { N: String(now) } },
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof ConditionalCheckFailedException) {
      return false;
    }
    throw err;
  }
}

// Writes the product document unless a newer event already did: "applied" or "stale".
async function storeProduct(stripeEvent) {
  const product = stripeEvent.data.object;
  const key = { pk: { S: `PRODUCT#${product.id}` }, sk: { S: "PRODUCT" } };
  const doc = {
    name: product.name,
    active: product.active && !product.deleted,
    metadata: product.metadata,
    plan: product.metadata?.plan ?? null,
  };
  try {
    await dynamo.send(
      new PutItemCommand({
        TableName: TABLE_NAME,
        Item: {
          ...key,
          doc: { S: JSON.stringify(doc) },
          event_created: { N: String(stripeEvent.created) },
          event_id: { S: stripeEvent.id },
        },
        ConditionExpression: "attribute_not_exists(#pk) OR #created < :created",
        ExpressionAttributeNames: { "#pk": "pk", "#created": "event_created" },
        ExpressionAttributeValues: { ":created": { N: String(stripeEvent.created) } },
      }),
    );
    return "applied";
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) {
      throw err;
    }
  }
  await dynamo.send(new GetItemCommand({ TableName: TABLE_NAME, Key: key, ConsistentRead: false }));
  return "stale";
}

// Gives the event back so that Stripe's retry can claim it again.
async function release(eventKey) {
  try {
    await dynamo.send(
      new DeleteItemCommand({
        TableName: TABLE_NAME,
        Key: eventKey,
        ConditionExpression: "#status = :processing",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":processing": { S: "processing" } },
      }),
    );
  } catch (err) {
    if (!(err instanceof ConditionalCheckFailedException)) {
      console.log(JSON.stringify({ level: "ERROR", error: err.name, message: "could not release the event" }));
    }
  }
}
