//! Adapters: the ports over the AWS SDK and async-stripe.

pub mod apigateway;
pub mod aws;
pub mod cloudformation;
pub mod cognito;
pub mod dynamo;
pub mod stripe;
#[cfg(test)]
mod test_server;
