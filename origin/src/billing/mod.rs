//! Stripe billing: Checkout for a subscription, verified webhooks stored before they are
//! acknowledged, and a worker that applies them to subscriptions and entitlements.

pub mod apply;
pub mod checkout;
pub mod events;
pub mod signature;
