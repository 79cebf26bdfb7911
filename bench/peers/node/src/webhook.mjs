// Node.js peer of the Rust Stripe webhook Lambda (`POST /stripe/webhook`), for the benchmark.
// It verifies the signature. An event whose whole effect is one stored record (product.*: the
// product document; invoice.* with a customer: the invoice) is written with the event's
// completion in one TransactWriteItems, without a claim, where the event is neither done nor
// claimed (or its claim ran out) and the record is newer than the stored one. Otherwise nothing
// is written there, and the event goes step by step as any other: it claims the event in
// DynamoDB (the event ledger), then:
// - product.*: stores the product document (newer-only), marks the event done;
// - customer.subscription.*: reads the customer's partition in one Query (the link: user, plan,
//   API key; every stored subscription), the product's plan from the stored catalogue (Stripe
//   only on a miss), and when the plan of all the customer's subscriptions changes, sets the
//   user's Cognito attribute and moves the API key between usage plans; then stores the
//   subscription (newer-only), the link's new plan and the event's completion in one
//   TransactWriteItems;
// - invoice.*: stores the invoice (newer-only) and the event's completion in one
//   TransactWriteItems.
// A renewal (same plan) is 4 DynamoDB calls: claim, Query, catalogue GetItem, transaction; an
// invoice or a product is 1 when nothing stands in the way: the transaction.
import Stripe from "stripe";
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from "@aws-sdk/client-dynamodb";
import {
  AdminUpdateUserAttributesCommand,
  CognitoIdentityProviderClient,
} from "@aws-sdk/client-cognito-identity-provider";
import {
  APIGatewayClient,
  CreateApiKeyCommand,
  CreateUsagePlanKeyCommand,
  DeleteUsagePlanKeyCommand,
} from "@aws-sdk/client-api-gateway";
import { CloudFormationClient } from "@aws-sdk/client-cloudformation";

const MAX_EVENT_BYTES = 512 * 1024;
const LEASE_SECS = 30;
const EVENT_TTL_SECS = 35 * 24 * 60 * 60;

const TABLE_NAME = process.env.TABLE_NAME;
const USER_POOL_ID = process.env.USER_POOL_ID ?? "";
const PLAN_ATTRIBUTE = "custom:plan_type";
// PLANS: "free=up_free,pro=up_pro", lowest first; a plan without "=" has no usage plan.
const PLANS = (process.env.PLANS ?? "free")
  .split(",")
  .map((entry) => entry.trim())
  .filter((entry) => entry !== "")
  .map((entry) => {
    const [name, usagePlan] = entry.split("=");
    return { name, usagePlan: usagePlan || null };
  });
const PLAN_RANK = new Map(PLANS.map((plan, rank) => [plan.name, rank]));
const USAGE_PLANS = new Map(PLANS.map((plan) => [plan.name, plan.usagePlan]));
const FREE_PLAN = PLANS[0].name;
const ENTITLED = new Set(["active", "trialing", "past_due"]);
const SUBSCRIPTION_EVENTS = new Set([
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.deleted",
]);
const INVOICE_EVENTS = new Set([
  "invoice.finalized",
  "invoice.paid",
  "invoice.payment_succeeded",
  "invoice.payment_failed",
]);
const LIVEMODE = (process.env.LIVEMODE ?? "false") === "true";
const WEBHOOK_SECRETS = (process.env.STRIPE_WEBHOOK_SECRETS ?? "")
  .split(",")
  .map((secret) => secret.trim())
  .filter((secret) => secret !== "");

// Clients are created once per execution environment and reused across invocations.
// The Rust function creates all of them at start; CloudFormation is not used here.
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
  const apply = applyFor(stripeEvent.type);
  if (apply === null) {
    log(stripeEvent, "ignored");
    return respond(200, { received: true, outcome: "ignored" });
  }

  const now = Math.floor(Date.now() / 1000);
  const eventKey = { pk: { S: `EVENT#${stripeEvent.id}` }, sk: { S: "EVENT" } };

  const record = recordAlone(stripeEvent);
  if (record !== null) {
    let written;
    try {
      written = await recordAtOnce(eventKey, record, stripeEvent.created, now);
    } catch (err) {
      logFailure(stripeEvent, err);
      return respond(500, { error: "retry_later" });
    }
    if (written) {
      log(stripeEvent, "applied");
      return respond(200, { received: true, outcome: "applied" });
    }
    // Declined: the step-by-step path below tells a duplicate, an event in progress and a stale
    // record apart.
  }

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
    outcome = await apply(stripeEvent, eventKey, now);
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

// The claim's condition: the event has no item, or another delivery's claim ran out.
function unclaimed(now) {
  return {
    ConditionExpression: "attribute_not_exists(#pk) OR (#status = :processing AND #lease < :now)",
    ExpressionAttributeNames: { "#pk": "pk", "#status": "status", "#lease": "lease_until" },
    ExpressionAttributeValues: { ":processing": { S: "processing" }, ":now": { N: String(now) } },
  };
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
        ...unclaimed(now),
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

// The function that applies an event of this type and completes it, or null to ignore it.
function applyFor(eventType) {
  if (eventType.startsWith("product.")) {
    return applyProduct;
  }
  if (SUBSCRIPTION_EVENTS.has(eventType)) {
    return applySubscription;
  }
  if (INVOICE_EVENTS.has(eventType)) {
    return applyInvoice;
  }
  return null;
}

function doneItem(eventKey, now) {
  return { ...eventKey, status: { S: "done" }, expires_at: { N: String(now + EVENT_TTL_SECS) } };
}

async function complete(eventKey, now) {
  await dynamo.send(new PutItemCommand({ TableName: TABLE_NAME, Item: doneItem(eventKey, now) }));
}

// A transaction's Put that applies only over an older stored version.
function newerOnlyPut(item, created) {
  return {
    Put: {
      TableName: TABLE_NAME,
      Item: item,
      ConditionExpression: "attribute_not_exists(#pk) OR #created < :created",
      ExpressionAttributeNames: { "#pk": "pk", "#created": "event_created" },
      ExpressionAttributeValues: { ":created": { N: String(created) } },
    },
  };
}

// The one item that is the whole of the event's effect (product.*: the product; invoice.* with
// a customer: the invoice), or null when the event has more to do, or nothing.
function recordAlone(stripeEvent) {
  if (stripeEvent.type.startsWith("product.")) {
    return productItem(stripeEvent);
  }
  if (INVOICE_EVENTS.has(stripeEvent.type)) {
    return invoiceItem(stripeEvent);
  }
  return null;
}

// Writes the event done (unless another delivery did or holds its claim) and the record
// (newer-only) in one transaction, without claiming the event first: true if written, false if
// a condition declined it (then nothing was written).
async function recordAtOnce(eventKey, item, created, now) {
  try {
    await dynamo.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          { Put: { TableName: TABLE_NAME, Item: doneItem(eventKey, now), ...unclaimed(now) } },
          newerOnlyPut(item, created),
        ],
      }),
    );
    return true;
  } catch (err) {
    if (err instanceof TransactionCanceledException) {
      return false;
    }
    throw err;
  }
}

async function applyProduct(stripeEvent, eventKey, now) {
  const outcome = await storeProduct(stripeEvent);
  await complete(eventKey, now);
  return outcome;
}

// Stores the subscription and applies the plan of all the customer's subscriptions to its user:
// the Cognito attribute and the API key's usage plan, only when the plan changes.
async function applySubscription(stripeEvent, eventKey, now) {
  const subscription = stripeEvent.data.object;
  const customerPk = { S: `CUSTOMER#${subscription.customer}` };
  const { Items: items = [] } = await dynamo.send(
    new QueryCommand({
      TableName: TABLE_NAME,
      KeyConditionExpression: "#pk = :pk",
      ExpressionAttributeNames: { "#pk": "pk" },
      ExpressionAttributeValues: { ":pk": customerPk },
      ConsistentRead: true,
    }),
  );
  const link = items.find((item) => item.sk.S === "LINK") ?? null;
  const stored = items.filter((item) => item.sk.S.startsWith("SUB#"));
  const previous = stored.find((item) => item.sk.S === `SUB#${subscription.id}`);
  if (previous && Number(previous.event_created.N) >= stripeEvent.created) {
    await complete(eventKey, now);
    return "stale";
  }

  const firstItem = subscription.items.data[0];
  const price = firstItem.price;
  const product = typeof price.product === "string" ? price.product : price.product.id;
  const state = {
    status: subscription.status,
    price: price.id,
    product,
    plan: await productPlan(product),
    current_period_end: firstItem.current_period_end ?? null,
  };
  const states = stored
    .filter((item) => item.sk.S !== `SUB#${subscription.id}`)
    .map((item) => JSON.parse(item.doc.S));
  const plan = effectivePlan([...states, state]);

  const writes = [
    newerOnlyPut(
      {
        pk: customerPk,
        sk: { S: `SUB#${subscription.id}` },
        doc: { S: JSON.stringify(state) },
        event_created: { N: String(stripeEvent.created) },
        event_id: { S: stripeEvent.id },
      },
      stripeEvent.created,
    ),
  ];
  const outcome = link === null ? "unmapped" : "applied";
  if (link !== null && link.plan?.S !== plan) {
    const keyId = await provision(link, plan);
    writes.push({
      Update: {
        TableName: TABLE_NAME,
        Key: { pk: customerPk, sk: { S: "LINK" } },
        UpdateExpression: "SET #plan = :plan, #key = :key",
        ExpressionAttributeNames: { "#plan": "plan", "#key": "key_id" },
        ExpressionAttributeValues: { ":plan": { S: plan }, ":key": { S: keyId ?? "" } },
      },
    });
  }
  writes.push({ Put: { TableName: TABLE_NAME, Item: doneItem(eventKey, now) } });
  try {
    await dynamo.send(new TransactWriteItemsCommand({ TransactItems: writes }));
  } catch (err) {
    if (!(err instanceof TransactionCanceledException)) {
      throw err;
    }
    // A newer state of the subscription was stored meanwhile.
    await complete(eventKey, now);
    return "stale";
  }
  return outcome;
}

// The product's plan from the stored catalogue; Stripe only when it is not stored.
async function productPlan(product) {
  const { Item } = await dynamo.send(
    new GetItemCommand({
      TableName: TABLE_NAME,
      Key: { pk: { S: `PRODUCT#${product}` }, sk: { S: "PRODUCT" } },
    }),
  );
  if (Item) {
    return JSON.parse(Item.doc.S).plan ?? null;
  }
  const fetched = await stripe.products.retrieve(product);
  return fetched.metadata?.plan ?? null;
}

// The highest plan of the subscriptions that entitle to one; the lowest plan otherwise.
function effectivePlan(states) {
  let plan = FREE_PLAN;
  for (const state of states) {
    if (ENTITLED.has(state.status) && (PLAN_RANK.get(state.plan) ?? -1) > PLAN_RANK.get(plan)) {
      plan = state.plan;
    }
  }
  return plan;
}

// Sets the user's plan attribute and moves its API key to the plan's usage plan (a key is
// created when there is none); returns the key's id.
async function provision(link, plan) {
  await cognito.send(
    new AdminUpdateUserAttributesCommand({
      UserPoolId: USER_POOL_ID,
      Username: link.username.S,
      UserAttributes: [{ Name: PLAN_ATTRIBUTE, Value: plan }],
    }),
  );
  let keyId = link.key_id?.S || null;
  const oldUsagePlan = USAGE_PLANS.get(link.plan?.S) ?? null;
  const newUsagePlan = USAGE_PLANS.get(plan) ?? null;
  if (oldUsagePlan === newUsagePlan) {
    return keyId;
  }
  if (keyId === null && newUsagePlan !== null) {
    keyId = (await apiGateway.send(new CreateApiKeyCommand({ name: link.sub.S, enabled: true }))).id;
  }
  if (keyId !== null && newUsagePlan !== null) {
    await apiGateway.send(
      new CreateUsagePlanKeyCommand({ usagePlanId: newUsagePlan, keyId, keyType: "API_KEY" }),
    );
  }
  if (keyId !== null && oldUsagePlan !== null) {
    await apiGateway.send(new DeleteUsagePlanKeyCommand({ usagePlanId: oldUsagePlan, keyId }));
  }
  return keyId;
}

// Stores the invoice's item and completes the event, in one transaction.
async function applyInvoice(stripeEvent, eventKey, now) {
  const item = invoiceItem(stripeEvent);
  if (item === null) {
    await complete(eventKey, now);
    return "ignored";
  }
  try {
    await dynamo.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          newerOnlyPut(item, stripeEvent.created),
          { Put: { TableName: TABLE_NAME, Item: doneItem(eventKey, now) } },
        ],
      }),
    );
  } catch (err) {
    if (!(err instanceof TransactionCanceledException)) {
      throw err;
    }
    await complete(eventKey, now);
    return "stale";
  }
  return "applied";
}

// The invoice's item: what a billing page shows of the invoice, with whether it left the
// customer delinquent, as of the event; null for an invoice without a customer.
function invoiceItem(stripeEvent) {
  const invoice = stripeEvent.data.object;
  if (!invoice.customer) {
    return null;
  }
  const doc = {
    status: invoice.status ?? null,
    number: invoice.number ?? null,
    currency: invoice.currency ?? null,
    amount_due: invoice.amount_due ?? null,
    amount_paid: invoice.amount_paid ?? null,
    period_end: invoice.period_end ?? null,
    delinquent: stripeEvent.type === "invoice.payment_failed",
    event_type: stripeEvent.type,
  };
  return {
    pk: { S: `CUSTOMER#${invoice.customer}` },
    sk: { S: `INVOICE#${invoice.id}` },
    doc: { S: JSON.stringify(doc) },
    event_created: { N: String(stripeEvent.created) },
    event_id: { S: stripeEvent.id },
  };
}

// The product's item: its document as of the event.
function productItem(stripeEvent) {
  const product = stripeEvent.data.object;
  const doc = {
    name: product.name,
    active: product.active && !product.deleted,
    metadata: product.metadata,
    plan: product.metadata?.plan ?? null,
  };
  return {
    pk: { S: `PRODUCT#${product.id}` },
    sk: { S: "PRODUCT" },
    doc: { S: JSON.stringify(doc) },
    event_created: { N: String(stripeEvent.created) },
    event_id: { S: stripeEvent.id },
  };
}

// Writes the product document unless a newer event already did: "applied" or "stale".
async function storeProduct(stripeEvent) {
  const item = productItem(stripeEvent);
  try {
    await dynamo.send(
      new PutItemCommand({
        TableName: TABLE_NAME,
        Item: item,
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
  const key = { pk: item.pk, sk: item.sk };
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
