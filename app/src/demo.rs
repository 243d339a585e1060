//! `billstream demo`: a merchant in test mode with one customer whose portal has something on
//! every tab — two cards, a subscription renewed once, paid invoices and an open one whose
//! charge was declined, a promotion and a plan allowance of credits partly used, and a top-up
//! to buy — made through the same use-cases as the API, so the demo shows what the service
//! really does. The test clock moves the merchant a month on to bill the renewal.

use chrono::Duration;
use domain::id::{CustomerId, PaymentMethodId};
use domain::payment_method::Card;
use domain::provider::Provider;
use domain::tenant::{Mode, Tenant};
use serde_json::json;

use crate::context::App;
use crate::credits::{NewCreditGrant, NewUsage};
use crate::customers::{CustomerFields, NewCustomer};
use crate::error::AppError;
use crate::invoices::{NewInvoice, NewLine};
use crate::merchants::{create_merchant, NewMerchant};
use crate::payment_methods::CollectedPaymentMethod;
use crate::plans::NewPlan;
use crate::principal::{CommandMetadata, Principal};
use crate::subscriptions::NewSubscription;
use crate::top_ups::NewTopUp;
use domain::plan::AllowanceInput;

/// The demo customer's id in the merchant's own system.
pub const DEMO_CUSTOMER: &str = "demo_customer";

/// What the demo made: the merchant's keys and the customer's portal session.
#[derive(Debug, Clone)]
pub struct Demo {
    pub merchant: NewMerchant,
    pub customer_id: CustomerId,
    /// A portal session token (`ps_…`) of the demo customer.
    pub session_token: String,
}

fn card(brand: &str, last_four: &str, exp_month: u32, exp_year: i32) -> CollectedPaymentMethod {
    CollectedPaymentMethod {
        provider: Provider::Sandbox,
        payment_type: "card".into(),
        card: Some(Card {
            brand: brand.into(),
            last_four: last_four.into(),
            exp_month,
            exp_year,
        }),
        provider_reference: None,
    }
}

impl App {
    /// Makes the demo merchant and its customer, as the module says.
    pub async fn seed_demo(&self) -> Result<Demo, AppError> {
        let merchant = create_merchant(&self.pool, "Demo Shop", Provider::Sandbox)
            .await
            .map_err(|e| AppError::internal("Failed to create the demo", e))?;
        let principal = Principal {
            tenant: Tenant::new(merchant.merchant_id.clone(), Mode::Test),
            key_id: "demo".into(),
            session: None,
        };
        let metadata = CommandMetadata::acting_as(principal.clone());
        let customer = self
            .create_customer(
                &metadata,
                NewCustomer {
                    email: Some("jane@example.com".into()),
                    fields: CustomerFields {
                        name: Some("Jane Doe".into()),
                        external_customer_id: Some(DEMO_CUSTOMER.into()),
                        billing_address_line1: Some("1 Market Street".into()),
                        billing_city: Some("San Francisco".into()),
                        billing_postal_code: Some("94105".into()),
                        billing_country: Some("US".into()),
                        ..CustomerFields::default()
                    },
                },
            )
            .await?;
        let customer_id = customer.id.clone();
        let visa = PaymentMethodId::generate();
        self.add_collected_payment_method(
            &metadata,
            &customer_id,
            visa.clone(),
            card("visa", "4242", 12, 2030),
        )
        .await?;
        let plan = self
            .create_plan(
                &metadata,
                NewPlan {
                    name: Some("Pro".into()),
                    description: Some("Everything in Pro, billed monthly".into()),
                    currency: Some("USD".into()),
                    pricing_data: Some(json!({"components": [
                        {"type": "flat", "name": "Pro", "amountCents": 2900},
                        {"type": "usage", "name": "API calls", "featureSlug": "api_calls",
                         "unitAmountCents": 1},
                    ]})),
                    credits: vec![AllowanceInput {
                        feature_slug: Some("api_calls".into()),
                        name: Some("API calls".into()),
                        amount: Some(1000),
                        rollover: Some(false),
                    }],
                    ..NewPlan::default()
                },
            )
            .await?;
        let plan_id = plan
            .id
            .ok_or_else(|| AppError::internal("Failed to create the demo", "no plan"))?;
        self.start_subscription(
            &metadata,
            NewSubscription {
                customer_id: Some(customer_id.to_string()),
                plan_id: Some(plan_id.to_string()),
                payment_method_id: Some(visa.to_string()),
                quantity: None,
            },
        )
        .await?;
        // A month on: the renewal is billed and charged to the visa card.
        let now = self.test_clock(&principal)?;
        self.advance_test_clock(&principal, now + Duration::days(31) + Duration::hours(1))
            .await?;
        // A second card, whose charges are declined (sandbox `…0341`), pays an extra invoice
        // and fails: the payment history shows a failure, the invoices an open one.
        let declining = PaymentMethodId::generate();
        self.add_collected_payment_method(
            &metadata,
            &customer_id,
            declining.clone(),
            card("mastercard", "0341", 8, 2027),
        )
        .await?;
        let extra = self
            .create_invoice(
                &metadata,
                NewInvoice {
                    customer_id: Some(customer_id.to_string()),
                    currency: Some("USD".into()),
                    lines: Some(vec![NewLine {
                        description: Some("Onboarding workshop".into()),
                        quantity: Some(1),
                        unit_amount_cents: Some(15000),
                    }]),
                },
            )
            .await?;
        self.finalize_invoice(&metadata, &extra.id).await?;
        if let Err(e) = self.pay_invoice(&metadata, &extra.id).await {
            tracing::debug!(error = %e, "the demo's declined charge, as intended");
        }
        // The visa card is the default again.
        self.set_subscription_payment_method(&metadata, &customer_id, Some(visa.as_str()))
            .await?;
        self.grant_credits(
            &metadata,
            NewCreditGrant {
                customer_id: Some(customer_id.to_string()),
                feature_slug: Some("api_calls".into()),
                amount: Some(500),
                source: Some("promotion".into()),
                expires_at: Some(self.test_clock(&principal)? + Duration::days(14)),
                reference_code: Some("WELCOME".into()),
                ..NewCreditGrant::default()
            },
        )
        .await?;
        for (n, quantity) in [120, 230, 75].into_iter().enumerate() {
            self.record_usage(
                &metadata,
                NewUsage {
                    customer_id: Some(customer_id.to_string()),
                    feature_slug: Some("api_calls".into()),
                    quantity: Some(quantity),
                    idempotency_key: Some(format!("demo-usage-{n}")),
                    ..NewUsage::default()
                },
            )
            .await?;
        }
        self.create_top_up(
            &metadata,
            NewTopUp {
                feature_slug: Some("api_calls".into()),
                name: Some("1,000 API calls".into()),
                credits_per_unit: Some(1000),
                unit_amount_cents: Some(500),
                currency: Some("USD".into()),
                plan_ids: Some(vec![plan_id.to_string()]),
                expires_after_days: Some(90),
                max_quantity: Some(10),
            },
        )
        .await?;
        let session = self
            .create_portal_session(&principal, Some(DEMO_CUSTOMER))
            .await?;
        Ok(Demo {
            merchant,
            customer_id,
            session_token: session.token,
        })
    }
}
