//! Adapters: the ports over the AWS SDK and async-stripe.

pub mod apigateway;
mod apigateway_usage;
pub mod aws;
pub mod cloudformation;
pub mod cognito;
pub mod dynamo;
pub mod stripe;
mod stripe_meters;
#[cfg(test)]
pub(crate) mod test_server;
