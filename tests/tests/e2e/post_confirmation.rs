//! The post-confirmation trigger end to end: cognito-local invokes the function running under
//! `cargo lambda watch`, which talks to the Stripe emulator, moto's DynamoDB and cognito-local.

use std::time::Duration;

use billing_core::table;
use integration_tests::*;
use serde_json::json;

#[tokio::test]
#[ignore = "needs the local emulators: run `make test`"]
async fn when_user_signs_up_and_confirms_should_get_exactly_one_linked_customer() {
    let env = LocalEnv::from_env();
    let sdk = env.sdk().await;
    let cognito = CognitoClient::new(&sdk);
    let dynamo = DynamoClient::new(&sdk);
    let stripe = env.stripe();
    let (username, email, sub) = sign_up(&env, &cognito).await;
    assert!(
        customers_with_sub(&stripe, &sub).await.is_empty(),
        "no customer before confirmation"
    );

    confirm_sign_up(&env, &cognito, &username).await;

    // cognito-local awaits the trigger; the poll only covers a slow first (compiling) start.
    let customer_id = eventually(Duration::from_secs(90), "custom:stripe_customer_id", || {
        user_attribute(&cognito, &env, &username, "custom:stripe_customer_id")
    })
    .await;

    let customers = customers_with_sub(&stripe, &sub).await;
    assert_eq!(customers.len(), 1, "exactly one customer for the user");
    let customer = &customers[0];
    assert_eq!(customer.id.as_str(), customer_id);
    assert_eq!(customer.email.as_deref(), Some(email.as_str()));
    assert_eq!(customer.name.as_deref(), Some(username.as_str()));
    let metadata = customer.metadata.clone().unwrap_or_default();
    assert_eq!(metadata.get("cognito_sub"), Some(&sub));
    assert_eq!(metadata.get("cognito_username"), Some(&username));
    assert_eq!(metadata.get("user_pool_id"), Some(&env.user_pool_id));

    let user_link = get_item(&dynamo, &env, &table::user_pk(&sub), table::SK_CUSTOMER)
        .await
        .expect("user -> customer link");
    assert_eq!(string(&user_link, "customer_id"), customer_id);
    let customer_link = get_item(
        &dynamo,
        &env,
        &table::customer_pk(&customer_id),
        table::SK_USER,
    )
    .await
    .expect("customer -> user link");
    assert_eq!(string(&customer_link, "sub"), sub);

    // Cognito invoking the trigger again (its retry) creates nothing.
    let replay = json!({
        "version": "1",
        "region": "local",
        "userPoolId": env.user_pool_id,
        "userName": username,
        "callerContext": {"awsSdkVersion": "replay", "clientId": env.client_id},
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {"userAttributes": {"sub": sub, "email": email}},
        "response": {}
    });
    assert_eq!(env.invoke("post-confirmation", &replay).await, replay);
    assert_eq!(customers_with_sub(&stripe, &sub).await.len(), 1);

    // A forgot-password confirmation fires the trigger too, and changes nothing.
    cognito
        .forgot_password()
        .client_id(&env.client_id)
        .username(&username)
        .send()
        .await
        .unwrap();
    cognito
        .confirm_forgot_password()
        .client_id(&env.client_id)
        .username(&username)
        .confirmation_code(env.confirmation_code(&username).await)
        .password("N3w-Passw0rd!Passw0rd")
        .send()
        .await
        .unwrap();

    let after = customers_with_sub(&stripe, &sub).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, customer.id);
    assert_eq!(
        user_attribute(&cognito, &env, &username, "custom:stripe_customer_id").await,
        Some(customer_id.clone())
    );
    let user_link_after = get_item(&dynamo, &env, &table::user_pk(&sub), table::SK_CUSTOMER)
        .await
        .unwrap();
    assert_eq!(user_link_after, user_link, "links untouched");
}
