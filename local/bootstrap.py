"""Bootstraps the local emulators, idempotently (run by local/up.sh, safe to run again):

- DynamoDB (moto): the billing table, pk/sk + GSI gsi1 (gsi1pk/gsi1sk, ALL), on demand, TTL on
  expires_at, point-in-time recovery;
- cognito-local: user pool USER_POOL_NAME (custom:stripe_customer_id and custom:plan_type,
  String, mutable; e-mail auto-verified) and its app client USER_POOL_CLIENT_NAME, which may read
  the custom attributes but not write them; both found by name when they exist;
- Stripe (our front): products Free and Pro (metadata plan) and their monthly USD prices with
  lookup keys free_monthly (0) and pro_monthly (1000 cents); existing ones are kept;
- local/.run/env: plain KEY=VALUE lines for `set -a; . local/.run/env; set +a` and for
  `cargo lambda watch --env-file`.

`bootstrap.py deliver-catalogue`, run by local/up.sh once the functions run, sends the
catalogue's events to the webhook again, so the table holds what GET /plans shows.

Reads the ports and names from the environment (local/env.defaults, exported by local/lib.sh).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

LOCAL_DIR = Path(__file__).resolve().parent
RUN_DIR = LOCAL_DIR / ".run"
REGION = "us-east-1"

# Attributes an app client may read / write. The custom attributes are set by our functions
# (admin APIs) only, so a user cannot change their own customer id or plan.
CUSTOM_ATTRIBUTES = ("stripe_customer_id", "plan_type")
STANDARD_WRITABLE = ("email", "name", "given_name", "family_name", "preferred_username",
                     "locale", "zoneinfo", "updated_at")
READ_ATTRIBUTES = sorted(STANDARD_WRITABLE + ("email_verified",)
                         + tuple(f"custom:{a}" for a in CUSTOM_ATTRIBUTES))
WRITE_ATTRIBUTES = sorted(STANDARD_WRITABLE)
AUTH_FLOWS = sorted(["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"])

CATALOGUE = [
    # (plan, product name, price lookup_key, unit_amount in cents)
    ("free", "Free", "free_monthly", 0),
    ("pro", "Pro", "pro_monthly", 1000),
]


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        sys.exit(f"bootstrap: {name} is not set (run through local/up.sh)")
    return value


def say(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


class Config:
    def __init__(self) -> None:
        self.moto_port = env("MOTO_PORT", "5000")
        self.cognito_port = env("COGNITO_PORT", "9229")
        self.localstripe_port = env("LOCALSTRIPE_PORT", "8420")
        self.stripe_port = env("STRIPE_PORT", "12111")
        self.lambda_port = env("LAMBDA_PORT", "9000")
        self.table_name = env("TABLE_NAME", "billing-local")
        self.pool_name = env("USER_POOL_NAME", "billing-local")
        self.client_name = env("USER_POOL_CLIENT_NAME", "billing-local-app")
        self.stripe_key = env("STRIPE_SECRET_KEY", "sk_test_local")
        self.webhook_secrets = env("STRIPE_WEBHOOK_SECRETS", "whsec_local")
        self.rust_log = env("RUST_LOG", "info")
        # The site users return to after Checkout and the portal (nothing needs to serve it).
        self.site_origin = env("SITE_ORIGIN", "http://127.0.0.1:3000")
        self.cognito_data_dir = env(
            "COGNITO_LOCAL_DATA_DIR", str(RUN_DIR / "cognito" / ".cognito" / "db"))
        self.env_file = Path(env("LOCAL_ENV_FILE", str(RUN_DIR / "env")))
        self.moto_url = f"http://127.0.0.1:{self.moto_port}"
        self.cognito_url = f"http://127.0.0.1:{self.cognito_port}"
        self.stripe_url = f"http://127.0.0.1:{self.stripe_port}"
        self.localstripe_url = f"http://127.0.0.1:{self.localstripe_port}"
        self.lambda_url = f"http://127.0.0.1:{self.lambda_port}"

    def client(self, service: str, endpoint: str):
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION,
                            aws_access_key_id="local", aws_secret_access_key="local")


# --- DynamoDB ---------------------------------------------------------------------------------

def ensure_table(cfg: Config) -> None:
    ddb = cfg.client("dynamodb", cfg.moto_url)
    name = cfg.table_name
    try:
        table = ddb.describe_table(TableName=name)["Table"]
        keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
        gsis = {g["IndexName"]: {k["AttributeName"]: k["KeyType"] for k in g["KeySchema"]}
                for g in table.get("GlobalSecondaryIndexes", [])}
        if keys != {"pk": "HASH", "sk": "RANGE"} or gsis.get("gsi1") != {"gsi1pk": "HASH", "gsi1sk": "RANGE"}:
            sys.exit(f"bootstrap: table {name} exists with another key schema: {keys}, {gsis}")
        say(f"table {name} exists")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        ddb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{
                "IndexName": "gsi1",
                "KeySchema": [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                              {"AttributeName": "gsi1sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
        )
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        say(f"table {name} created")
    ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != "expires_at":
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expires_at"})
        say(f"table {name}: TTL on expires_at")
    backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    if pitr != "ENABLED":
        ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
        say(f"table {name}: point-in-time recovery on")


# --- Cognito (cognito-local) ------------------------------------------------------------------

def ensure_user_pool(cfg: Config) -> tuple[str, str]:
    idp = cfg.client("cognito-idp", cfg.cognito_url)
    pools = [p for p in idp.list_user_pools(MaxResults=60)["UserPools"] if p["Name"] == cfg.pool_name]
    if len(pools) > 1:
        sys.exit(f"bootstrap: {len(pools)} user pools named {cfg.pool_name}: "
                 f"{[p['Id'] for p in pools]}")
    if pools:
        pool_id = pools[0]["Id"]
        schema = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"].get("SchemaAttributes", [])
        have = {a["Name"] for a in schema}
        missing = [a for a in CUSTOM_ATTRIBUTES if f"custom:{a}" not in have]
        if missing:
            idp.add_custom_attributes(UserPoolId=pool_id, CustomAttributes=[
                custom_attribute(a) for a in missing])
            say(f"user pool {pool_id}: added custom attributes {missing}")
        say(f"user pool {cfg.pool_name} exists: {pool_id}")
    else:
        pool_id = idp.create_user_pool(
            PoolName=cfg.pool_name,
            AutoVerifiedAttributes=["email"],
            Schema=[custom_attribute(a) for a in CUSTOM_ATTRIBUTES],
        )["UserPool"]["Id"]
        say(f"user pool {cfg.pool_name} created: {pool_id}")

    wanted = {"ReadAttributes": READ_ATTRIBUTES, "WriteAttributes": WRITE_ATTRIBUTES,
              "ExplicitAuthFlows": AUTH_FLOWS}
    clients = [c for c in idp.list_user_pool_clients(UserPoolId=pool_id, MaxResults=60)["UserPoolClients"]
               if c["ClientName"] == cfg.client_name]
    if len(clients) > 1:
        sys.exit(f"bootstrap: {len(clients)} app clients named {cfg.client_name} in {pool_id}")
    if clients:
        client_id = clients[0]["ClientId"]
        current = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
        if any(sorted(current.get(k) or []) != v for k, v in wanted.items()):
            idp.update_user_pool_client(UserPoolId=pool_id, ClientId=client_id,
                                        ClientName=cfg.client_name, **wanted)
            say(f"app client {cfg.client_name}: attributes and auth flows updated")
        say(f"app client {cfg.client_name} exists: {client_id}")
    else:
        client_id = idp.create_user_pool_client(
            UserPoolId=pool_id, ClientName=cfg.client_name, GenerateSecret=False, **wanted,
        )["UserPoolClient"]["ClientId"]
        say(f"app client {cfg.client_name} created: {client_id}")
    return pool_id, client_id


def custom_attribute(name: str) -> dict:
    return {"Name": name, "AttributeDataType": "String", "Mutable": True,
            "StringAttributeConstraints": {"MinLength": "0", "MaxLength": "256"}}


# --- Stripe (our front) -----------------------------------------------------------------------

def form_pairs(params: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: a[b]=c for dicts, a[]=c for lists of scalars."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        full = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            pairs += form_pairs(value, full)
        elif isinstance(value, (list, tuple)):
            pairs += [(f"{full}[]", str(v)) for v in value]
        elif isinstance(value, bool):
            pairs.append((full, "true" if value else "false"))
        elif value is not None:
            pairs.append((full, str(value)))
    return pairs


def stripe(cfg: Config, method: str, path: str, params: dict | None = None) -> dict:
    body = None
    url = cfg.stripe_url + path
    encoded = urllib.parse.urlencode(form_pairs(params or {}))
    if method == "GET" and encoded:
        url += "?" + encoded
    elif method != "GET":
        body = encoded.encode()
    request = urllib.request.Request(url, data=body, method=method, headers={
        "Authorization": f"Bearer {cfg.stripe_key}",
        "Content-Type": "application/x-www-form-urlencoded",
    })
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return json.loads(text) if text.strip() else {}
    except urllib.error.HTTPError as e:
        sys.exit(f"bootstrap: Stripe {method} {path} -> {e.code}: {e.read().decode(errors='replace')[:500]}")


STACK_TEMPLATE = {
    "Description": "Resources a pro subscription pays for (local demo: one SNS topic)",
    "Parameters": {"SubscriptionId": {"Type": "String"}, "CustomerId": {"Type": "String"}},
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic",
                            "Properties": {"TopicName": {"Fn::Sub": "pro-${SubscriptionId}"}}}},
}


def stack_template_bucket(cfg: Config) -> str:
    """The one bucket the webhook takes stack templates from (STACK_TEMPLATE_BUCKET)."""
    return f"{cfg.table_name}-templates"


def ensure_stack_template(cfg: Config) -> str:
    """The pro product's stack template, in moto's S3, where moto's CloudFormation reads it."""
    bucket, key = stack_template_bucket(cfg), "pro-resources.json"
    s3 = cfg.client("s3", cfg.moto_url)
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(STACK_TEMPLATE).encode())
    return f"https://s3.amazonaws.com/{bucket}/{key}"


def ensure_catalogue(cfg: Config) -> None:
    prices = stripe(cfg, "GET", "/v1/prices", {
        "lookup_keys": [key for _, _, key, _ in CATALOGUE], "limit": 100})["data"]
    by_key = {p.get("lookup_key"): p for p in prices}
    products = None
    for plan, name, lookup_key, amount in CATALOGUE:
        if lookup_key in by_key:
            say(f"price {lookup_key} exists: {by_key[lookup_key]['id']}")
            continue
        if products is None:
            products = stripe(cfg, "GET", "/v1/products", {"limit": 100})["data"]
        product = next((p for p in products
                        if (p.get("metadata") or {}).get("plan") == plan and p.get("active", True)), None)
        if product is None:
            metadata = {"plan": plan}
            if plan == "pro":
                # The webhook gives each active pro subscription a stack of this template.
                metadata["stack_template_url"] = ensure_stack_template(cfg)
            product = stripe(cfg, "POST", "/v1/products", {"name": name, "metadata": metadata})
            products.append(product)
            say(f"product {name} created: {product['id']}")
        price = stripe(cfg, "POST", "/v1/prices", {
            "product": product["id"], "currency": "usd", "unit_amount": amount,
            "recurring": {"interval": "month"}, "lookup_key": lookup_key,
            "nickname": f"{name} monthly", "metadata": {"plan": plan},
        })
        say(f"price {lookup_key} created: {price['id']} ({amount} usd cents a month)")


# --- API Gateway usage plans ------------------------------------------------------------------

def ensure_usage_plans(cfg: Config) -> str:
    """One usage plan per plan, lowest first; returns the functions' PLANS value."""
    apigw = cfg.client("apigateway", cfg.moto_url)
    existing = {plan["name"]: plan["id"] for plan in apigw.get_usage_plans().get("items", [])}
    entries = []
    for plan, limit in (("free", 100), ("pro", 10000)):
        name = f"{cfg.table_name}-{plan}"
        plan_id = existing.get(name)
        if plan_id is None:
            plan_id = apigw.create_usage_plan(
                name=name, description=f"{plan} plan",
                quota={"limit": limit, "period": "MONTH"},
                throttle={"rateLimit": 10.0, "burstLimit": 20})["id"]
            say(f"usage plan {name} created: {plan_id}")
        entries.append(f"{plan}={plan_id}")
    return ",".join(entries)


# --- the Stripe emulator's webhook endpoint -----------------------------------------------------

def ensure_webhook_endpoint(cfg: Config) -> None:
    """Points the Stripe front's signed events at the webhook function under cargo lambda watch
    (its function URL). Re-registering is harmless."""
    url = f"{cfg.lambda_url}/lambda-url/webhook/stripe/webhook"
    secret = cfg.webhook_secrets.split(",")[0].strip()
    stripe(cfg, "POST", "/_config/webhooks/lambda", {"url": url, "secret": secret})
    say(f"Stripe webhook endpoint: {url}")


# --- local/.run/env ---------------------------------------------------------------------------

def secret_parameters(cfg: Config) -> dict:
    """The Stripe secrets as SSM SecureString parameters in moto, as a deployment keeps them:
    the functions read them at start-up, so cargo lambda watch, which logs every variable of a
    function it spawns, never sees them."""
    parameters = {
        "STRIPE_SECRET_KEY_PARAMETER": (f"/{cfg.table_name}/stripe-secret-key", cfg.stripe_key),
        "STRIPE_WEBHOOK_SECRETS_PARAMETER": (f"/{cfg.table_name}/stripe-webhook-secrets",
                                             cfg.webhook_secrets),
    }
    ssm = cfg.client("ssm", cfg.moto_url)
    for name, value in parameters.values():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    return {variable: name for variable, (name, _) in parameters.items()}


def write_env_file(path: Path, values: dict) -> None:
    for key, value in values.items():
        # Sourced by sh and read by cargo lambda as is: no quoting, so no room for odd characters.
        if any(c in value for c in " \t\n'\"\\$`#;&|<>()"):
            sys.exit(f"bootstrap: {key}={value!r} cannot go in a plain KEY=VALUE env file")
    # cargo lambda's env-file parser refuses an unquoted value containing '=' (PLANS has some):
    # such values are double-quoted, which sh reads the same way.
    text = "".join(f'{k}="{v}"\n' if "=" in v else f"{k}={v}\n" for k, v in values.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    say(f"wrote {path}")


def write_env(cfg: Config, pool_id: str, client_id: str, plans: str) -> None:
    """local/.run/env for the scripts and tests (with the secrets: they sign events and call
    the Stripe front), and local/.run/functions.env for cargo lambda watch (without them)."""
    values = {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_ENDPOINT_URL_DYNAMODB": cfg.moto_url,
        "AWS_ENDPOINT_URL_API_GATEWAY": cfg.moto_url,
        "AWS_ENDPOINT_URL_CLOUDFORMATION": cfg.moto_url,
        "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": cfg.cognito_url,
        "STRIPE_API_BASE": cfg.stripe_url,
        "STRIPE_SECRET_KEY": cfg.stripe_key,
        "STRIPE_WEBHOOK_SECRETS": cfg.webhook_secrets,
        "TABLE_NAME": cfg.table_name,
        # The tag value of the API keys the functions create, the stack name when deployed.
        "DEPLOYMENT_NAME": cfg.table_name,
        # The product's stack_template_url is admitted from this bucket only (whole bucket).
        "STACK_TEMPLATE_BUCKET": stack_template_bucket(cfg),
        "PLANS": plans,
        "SITE_ORIGIN": cfg.site_origin,
        "USER_POOL_ID": pool_id,
        "USER_POOL_CLIENT_ID": client_id,
        "LAMBDA_ENDPOINT": cfg.lambda_url,
        "LOCALSTRIPE_URL": cfg.localstripe_url,
        "COGNITO_LOCAL_DATA_DIR": str(Path(cfg.cognito_data_dir).resolve()),
        "RUST_LOG": cfg.rust_log,
        "MOTO_PORT": cfg.moto_port,
        "COGNITO_PORT": cfg.cognito_port,
        "LOCALSTRIPE_PORT": cfg.localstripe_port,
        "STRIPE_PORT": cfg.stripe_port,
        "LAMBDA_PORT": cfg.lambda_port,
    }
    write_env_file(cfg.env_file, values)
    functions = {k: v for k, v in values.items()
                 if k not in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRETS")}
    functions["AWS_ENDPOINT_URL_SSM"] = cfg.moto_url
    functions.update(secret_parameters(cfg))
    write_env_file(cfg.env_file.with_name("functions.env"), functions)


# --- the catalogue in the table ----------------------------------------------------------------

CATALOGUE_EVENTS = ("product.created", "product.updated", "price.created", "price.updated")
DELIVERY_DEADLINE_SECS = 600


def deliver_catalogue(cfg: Config) -> None:
    """Sends the catalogue's events to the webhook again, once it runs: the prices above are
    created before it does, and GET /plans reads the catalogue the webhook stored (a deployment
    runs `billing-admin import` once instead). The webhook's event ledger applies each once."""
    events = [event for kind in CATALOGUE_EVENTS
              for event in stripe(cfg, "GET", "/_test/events", {"type": kind})["data"]]
    events.sort(key=lambda event: event["created"])
    deadline = time.monotonic() + DELIVERY_DEADLINE_SECS
    for event in events:
        while True:
            result = stripe(cfg, "POST", f"/_test/events/{event['id']}/resend")
            statuses = [delivery["status"] for delivery in result.get("deliveries", [])]
            if all(isinstance(status, int) and 200 <= status < 300 for status in statuses):
                break
            # The webhook's first invocation builds it under cargo lambda watch.
            if time.monotonic() > deadline:
                sys.exit(f"bootstrap: the webhook did not accept {event['type']} {event['id']}: {statuses}")
            time.sleep(2)
    say(f"catalogue delivered to the webhook: {len(events)} events")


def main() -> None:
    cfg = Config()
    if sys.argv[1:] == ["deliver-catalogue"]:
        deliver_catalogue(cfg)
        return
    ensure_table(cfg)
    pool_id, client_id = ensure_user_pool(cfg)
    ensure_catalogue(cfg)
    plans = ensure_usage_plans(cfg)
    ensure_webhook_endpoint(cfg)
    write_env(cfg, pool_id, client_id, plans)


if __name__ == "__main__":
    main()
