//! The Stripe webhook: an HTTPS function (`POST /stripe/webhook`, signed deliveries) and an
//! EventBridge function (Stripe's event destination, unsigned). Both hand the body to one
//! `SyncService::receive`.

pub mod config;
pub mod eventbridge;
pub mod handler;

use billing_core::adapters::apigateway::ApiGatewayKeys;
use billing_core::adapters::aws::resolve_secret;
use billing_core::adapters::cloudformation::CloudFormationStacks;
use billing_core::adapters::cognito::CognitoDirectory;
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::adapters::stripe::StripeBilling;
use billing_core::plans::PlanCatalog;
use billing_core::ports::SyncPorts;
use billing_core::webhook::sync::{SyncService, SyncSettings};
use secrecy::SecretString;

use config::{Config, split_secrets};

/// The webhook's ports in production: `Deps<Aws>`.
#[derive(Debug)]
pub enum Aws {}

impl SyncPorts for Aws {
    type Store = DynamoStore;
    type Billing = StripeBilling;
    type Users = CognitoDirectory;
    type Keys = ApiGatewayKeys;
    type Stacks = CloudFormationStacks;
}

/// What both webhook functions are built on, once per cold start.
pub struct Deps<P: SyncPorts> {
    /// DynamoDB: event log, links, subscriptions, records, stacks.
    pub store: P::Store,
    pub stripe: P::Billing,
    /// Cognito: attributes, and users found or created for payments made first.
    pub directory: P::Users,
    pub keys: P::Keys,
    pub stacks: P::Stacks,
    pub settings: SyncSettings,
    /// Every secret currently accepted (rotation); empty for EventBridge.
    pub webhook_secrets: Vec<SecretString>,
    pub livemode: bool,
    /// What the usage reporter reads (`METERED_PLANS`).
    pub usage: billing_core::usage::UsageSettings,
}

impl<P: SyncPorts> std::fmt::Debug for Deps<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("settings", &self.settings)
            .field("livemode", &self.livemode)
            .finish_non_exhaustive()
    }
}

impl<P: SyncPorts> Deps<P> {
    pub fn plans(&self) -> &PlanCatalog {
        &self.settings.plans
    }

    pub fn sync(&self) -> SyncService<'_, P> {
        SyncService {
            store: &self.store,
            billing: &self.stripe,
            users: &self.directory,
            keys: &self.keys,
            stacks: &self.stacks,
            settings: &self.settings,
        }
    }

    /// The usage reporter over these ports (`METERED_PLANS`).
    pub fn usage_reporter(
        &self,
    ) -> billing_core::usage::UsageReporter<'_, P::Store, P::Keys, P::Billing> {
        billing_core::usage::UsageReporter {
            store: &self.store,
            counts: &self.keys,
            meters: &self.stripe,
            settings: &self.usage,
        }
    }
}

impl Deps<Aws> {
    /// The production ports from the configuration: the Stripe key (and, when configured, the
    /// webhook secrets) resolved from SSM or Secrets Manager.
    pub async fn from_config(
        config: Config,
        sdk: &aws_config::SdkConfig,
    ) -> billing_core::Result<Self> {
        let secret_key = resolve_secret(&config.stripe.secret_key, sdk).await?;
        let webhook_secrets = match &config.webhook_secrets {
            Some(source) => split_secrets(&resolve_secret(source, sdk).await?),
            None => Vec::new(),
        };
        Ok(Self {
            store: DynamoStore::from_sdk(sdk, &config.table_name),
            stripe: StripeBilling::new(&config.stripe, &secret_key)?,
            directory: CognitoDirectory::from_sdk(sdk),
            keys: ApiGatewayKeys::from_sdk(sdk, config.deployment),
            stacks: CloudFormationStacks::from_sdk(sdk, config.stack_role),
            settings: config.sync,
            webhook_secrets,
            livemode: config.livemode,
            usage: config.usage,
        })
    }
}
