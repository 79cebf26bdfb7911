//! `billing-admin` end to end: an account made before the deployment (50 customers and their
//! subscriptions in several statuses, Cognito users matching by `cognito_sub` metadata or by
//! verified e-mail, some matching nobody) imported, linked and provisioned, a second import that
//! changes nothing; an audit that finds a key moved to the wrong usage plan by hand and puts it
//! back; a parked customer linked by hand; a user shown.

use std::collections::HashMap;
use std::time::Duration;

use integration_tests::*;
use reqwest::Method;
use serde_json::Value;

const PASSWORD: &str = "Passw0rd!Passw0rd";

/// A user of the pool from before the deployment: made by an administrator, so no trigger ran
/// and nothing links them; confirmed with a verified e-mail unless `verified` is false.
async fn user_before_deployment(
    env: &LocalEnv,
    cognito: &CognitoClient,
    verified: bool,
) -> (String, String, String) {
    let username = unique("pre-");
    let email = format!("{username}@example.com");
    let mut create = cognito
        .admin_create_user()
        .user_pool_id(&env.user_pool_id)
        .username(&username)
        .user_attributes(attribute("email", &email))
        .message_action(aws_sdk_cognitoidentityprovider::types::MessageActionType::Suppress);
    if verified {
        create = create.user_attributes(attribute("email_verified", "true"));
    }
    let created = create.send().await.unwrap();
    let sub = created
        .user()
        .unwrap()
        .attributes()
        .iter()
        .find(|a| a.name() == "sub")
        .and_then(|a| a.value())
        .unwrap()
        .to_owned();
    if verified {
        cognito
            .admin_set_user_password()
            .user_pool_id(&env.user_pool_id)
            .username(&username)
            .password(PASSWORD)
            .permanent(true)
            .send()
            .await
            .unwrap();
    }
    (username, email, sub)
}

/// How a customer of the old account is subscribed, and the plan that entitles to.
#[derive(Debug, Clone, Copy)]
enum Held {
    Nothing,
    Active,
    Canceled,
    PastDue,
    CancelsAtPeriodEnd,
}

impl Held {
    fn of(i: usize) -> Self {
        [
            Self::Nothing,
            Self::Active,
            Self::Canceled,
            Self::PastDue,
            Self::CancelsAtPeriodEnd,
        ][i % 5]
    }

    fn plan(self) -> &'static str {
        match self {
            Self::Nothing | Self::Canceled => "free",
            Self::Active | Self::PastDue | Self::CancelsAtPeriodEnd => "pro",
        }
    }
}

/// A customer with a card, as the old account made them.
async fn old_customer(env: &LocalEnv, email: &str, cognito_sub: Option<&str>) -> String {
    let mut form = vec![("email", email)];
    if let Some(sub) = cognito_sub {
        form.push(("metadata[cognito_sub]", sub));
    }
    let customer = stripe_front_form(env, Method::POST, "/v1/customers", &form).await;
    let customer = customer["id"].as_str().unwrap().to_owned();
    let card = stripe_front_form(
        env,
        Method::POST,
        "/v1/payment_methods/pm_card_visa/attach",
        &[("customer", &customer)],
    )
    .await;
    stripe_front_form(
        env,
        Method::POST,
        &format!("/v1/customers/{customer}"),
        &[(
            "invoice_settings[default_payment_method]",
            card["id"].as_str().unwrap(),
        )],
    )
    .await;
    customer
}

async fn subscribe(env: &LocalEnv, customer: &str, price: &str, held: Held) {
    if matches!(held, Held::Nothing) {
        return;
    }
    let subscription = stripe_front_form(
        env,
        Method::POST,
        "/v1/subscriptions",
        &[("customer", customer), ("items[0][price]", price)],
    )
    .await;
    let id = subscription["id"].as_str().unwrap();
    match held {
        Held::Canceled => {
            stripe_front(env, Method::DELETE, &format!("/v1/subscriptions/{id}")).await;
        }
        Held::PastDue => {
            stripe_front(
                env,
                Method::POST,
                &format!("/_test/subscriptions/{id}/renewal_failed"),
            )
            .await;
        }
        Held::CancelsAtPeriodEnd => {
            stripe_front_form(
                env,
                Method::POST,
                &format!("/v1/subscriptions/{id}"),
                &[("cancel_at_period_end", "true")],
            )
            .await;
        }
        Held::Nothing | Held::Active => {}
    }
}

struct OldCustomer {
    customer: String,
    /// The user it should be linked to (username, sub); `None` when nobody matches.
    user: Option<(String, String)>,
    held: Held,
}

/// The account before the deployment: 20 customers whose metadata names their user's sub
/// (under another e-mail), 20 matching a user by verified e-mail (the last one's user never
/// verified it), 10 matching nobody; subscriptions in five states. Made with webhook deliveries
/// off: the deployment never heard of any of it.
async fn account_before_deployment(env: &LocalEnv, cognito: &CognitoClient) -> Vec<OldCustomer> {
    let price = stripe_front(env, Method::GET, "/v1/prices?lookup_keys[]=pro_monthly").await;
    let price = price["data"][0]["id"].as_str().unwrap().to_owned();
    let back_on = lost_deliveries(env).await;
    let mut old = Vec::new();
    for i in 0..50 {
        let held = Held::of(i);
        let (customer, user) = match i {
            0..20 => {
                let (username, _, sub) = user_before_deployment(env, cognito, true).await;
                let billing = unique("billing-") + "@example.com";
                let customer = old_customer(env, &billing, Some(&sub)).await;
                (customer, Some((username, sub)))
            }
            20..40 => {
                let verified = i != 39;
                let (username, email, sub) = user_before_deployment(env, cognito, verified).await;
                let customer = old_customer(env, &email, None).await;
                (customer, verified.then_some((username, sub)))
            }
            _ => {
                let nobody = unique("nobody-") + "@example.com";
                (old_customer(env, &nobody, None).await, None)
            }
        };
        subscribe(env, &customer, &price, held).await;
        old.push(OldCustomer {
            customer,
            user,
            held,
        });
    }
    // localstripe's events reach the list a moment after the calls: let them land while
    // deliveries are still off.
    deliveries_settled(env).await;
    drop(back_on);
    old
}

fn import_json(extra: &[&str]) -> Value {
    let mut args = vec!["--json", "import"];
    args.extend_from_slice(extra);
    serde_json::from_str(billing_admin(&args).trim()).unwrap()
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn an_account_from_before_the_deployment_is_imported_once_and_audited() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let apigw = aws_sdk_apigateway::Client::new(&sdk);
    let old = account_before_deployment(&env, &cognito).await;

    // A rehearsal writes nothing.
    let rehearsal = import_json(&["--dry-run"]);
    assert_eq!(rehearsal["dry_run"], true);
    assert!(
        rehearsal["linked_now"].as_u64().unwrap() >= 39,
        "{rehearsal}"
    );
    let (username, sub) = old[0].user.clone().unwrap();
    assert_eq!(
        user_attribute(&cognito, &env, &username, "custom:stripe_customer_id").await,
        None
    );

    let report = import_json(&[]);
    assert!(report["failed"].as_array().unwrap().is_empty(), "{report}");
    assert!(report["customers_listed"].as_u64().unwrap() >= 50);
    assert!(report["linked_now"].as_u64().unwrap() >= 39, "{report}");
    let unmatched: HashMap<String, String> = report["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["customer_id"].as_str().unwrap().to_owned(),
                u["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for customer in &old {
        assert_eq!(
            unmatched.contains_key(&customer.customer),
            customer.user.is_none(),
            "{} reported unmatched: {:?}",
            customer.customer,
            unmatched.get(&customer.customer)
        );
        let Some((username, sub)) = &customer.user else {
            continue;
        };
        let plan = customer.held.plan();
        assert_eq!(
            user_attribute(&cognito, &env, username, "custom:stripe_customer_id")
                .await
                .as_deref(),
            Some(customer.customer.as_str())
        );
        assert_eq!(
            user_attribute(&cognito, &env, username, "custom:plan_type")
                .await
                .as_deref(),
            Some(plan),
            "{:?}",
            customer.held
        );
        assert_eq!(
            key_usage_plans(&apigw, sub).await,
            Some((vec![usage_plan(plan)], true)),
            "{:?}",
            customer.held
        );
    }

    // Again: nothing to change, and it says so.
    let again = import_json(&[]);
    for field in [
        "linked_now",
        "profiles_stored",
        "subscriptions_stored",
        "customers_with_drift",
    ] {
        assert_eq!(again[field], 0, "{field}: {again}");
    }
    assert!(
        again["catalogue"]
            .as_object()
            .unwrap()
            .values()
            .all(|count| count["stored"] == 0),
        "{again}"
    );
    let human = billing_admin(&["import"]);
    assert!(
        human.contains("nothing to change: Stripe and the deployment agree"),
        "{human}"
    );

    // By hand, in the console: the pro user's key moved to the free usage plan.
    let pro = old
        .iter()
        .find(|c| matches!(c.held, Held::Active) && c.user.is_some())
        .unwrap();
    let (pro_username, pro_sub) = pro.user.clone().unwrap();
    let key = keys_of(&apigw, &pro_sub).await.remove(0);
    let key_id = key.id().unwrap();
    apigw
        .delete_usage_plan_key()
        .usage_plan_id(usage_plan("pro"))
        .key_id(key_id)
        .send()
        .await
        .unwrap();
    apigw
        .create_usage_plan_key()
        .usage_plan_id(usage_plan("free"))
        .key_id(key_id)
        .key_type("API_KEY")
        .send()
        .await
        .unwrap();

    let (code, found, _) = billing_admin_run(&["audit", "--user", &pro_sub]);
    assert_eq!(code, 3, "drift found and left: {found}");
    assert!(
        found.contains(&format!("key {key_id} on [{}]", usage_plan("free"))),
        "{found}"
    );
    let (code, rehearsed, _) =
        billing_admin_run(&["audit", "--user", &pro_username, "--fix", "--dry-run"]);
    assert_eq!(code, 3, "{rehearsed}");
    assert_eq!(
        key_usage_plans(&apigw, &pro_sub).await,
        Some((vec![usage_plan("free")], true))
    );
    let fixed: Value = serde_json::from_str(
        billing_admin(&["--json", "audit", "--user", &pro_sub, "--fix"]).trim(),
    )
    .unwrap();
    assert_eq!(fixed["repaired"], true, "{fixed}");
    assert_eq!(fixed["drift"][0]["drift"], "key_usage_plans", "{fixed}");
    assert_eq!(
        key_usage_plans(&apigw, &pro_sub).await,
        Some((vec![usage_plan("pro")], true))
    );
    let clean = billing_admin(&["audit", "--user", &pro_sub]);
    assert!(
        clean.contains("1 linked users audited, 0 with drift"),
        "{clean}"
    );

    // The user as an operator sees them; the key's value only when asked.
    let shown = billing_admin(&["user", "show", &pro_sub]);
    assert!(shown.contains(&pro.customer), "{shown}");
    assert!(shown.contains("pro (attribute pro)"), "{shown}");
    assert!(!shown.contains("api key value"), "{shown}");
    let with_key: Value = serde_json::from_str(
        billing_admin(&["--json", "user", "show", &pro_username, "--show-key"]).trim(),
    )
    .unwrap();
    assert_eq!(with_key["key"]["value"], key.value().unwrap(), "{with_key}");
    assert_eq!(with_key["subscriptions"][0]["status"], "active");
    let _ = sub;
}

#[tokio::test]
#[ignore = "needs the local emulators: make test"]
async fn a_parked_customer_is_linked_by_hand_and_synced() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    // Paid under an e-mail no user has: its events park as unmapped.
    let (username, _, sub) = user_before_deployment(&env, &cognito, true).await;
    let stranger = unique("stranger-") + "@example.com";
    let customer = old_customer(&env, &stranger, None).await;
    let price = stripe_front(&env, Method::GET, "/v1/prices?lookup_keys[]=pro_monthly").await;
    subscribe(
        &env,
        &customer,
        price["data"][0]["id"].as_str().unwrap(),
        Held::Active,
    )
    .await;
    eventually(Duration::from_secs(30), "events parked", || async {
        let parked = billing_admin(&["--json", "unmapped", "list"]);
        parked.contains(&customer).then_some(())
    })
    .await;

    let rehearsal = billing_admin(&["unmapped", "link", &customer, &sub, "--dry-run"]);
    assert!(rehearsal.contains("dry run: would link"), "{rehearsal}");
    assert_eq!(
        user_attribute(&cognito, &env, &username, "custom:plan_type").await,
        None
    );

    let linked: Value = serde_json::from_str(
        billing_admin(&["--json", "unmapped", "link", &customer, &username]).trim(),
    )
    .unwrap();
    assert_eq!(linked["outcome"], "linked", "{linked}");
    assert!(linked["parked_cleared"].as_u64().unwrap() >= 1, "{linked}");
    assert_eq!(
        user_attribute(&cognito, &env, &username, "custom:plan_type")
            .await
            .as_deref(),
        Some("pro")
    );
    assert!(!billing_admin(&["--json", "unmapped", "list"]).contains(&customer));
    let (code, again, _) = billing_admin_run(&["unmapped", "link", &customer, &sub]);
    assert_eq!(code, 2, "{again}");
    assert!(again.contains("linked to"), "{again}");
}
