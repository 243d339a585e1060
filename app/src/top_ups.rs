//! Top-ups (issue 12): credits a merchant offers its customers to buy, and their purchase
//! from the portal.
//!
//! A purchase is a recorded flow (`credits.purchase`, `flows.rs`) of one charge of the
//! customer's default payment method. The charge records what it buys (`TopUpPurchase`,
//! with the ids of the invoice and the grant it makes), so that its settlement — the
//! provider's answer, its webhook, or a resumed flow asking the provider again with the same
//! payment id — finishes the purchase, whichever comes first: only a succeeded charge makes
//! the invoice (one line, issued and paid) and the grant (source `topup`); a declined one
//! leaves a failed payment and nothing else.
//!
//! Killed between the charge and the grant, the flow is resumed: the provider answers the
//! same payment id with the first charge, and each step after it (draft, issue, payment
//! recorded, grant) is done once, by its derived id. A double click with one
//! `Idempotency-Key` is one flow, so one charge.

use cqrs_es::AggregateError;
use domain::credit::{CreditCommand, CreditError, CreditLedger, GrantSource, NewGrant};
use domain::currency::Currency;
use domain::id::{CreditGrantId, CustomerId, InvoiceId, PaymentId, PlanId, TopUpId};
use domain::invoice::{
    DocumentType, Invoice, InvoiceCommand, InvoiceError, InvoiceStatus, LineInput,
};
use domain::payment::{Payment, PaymentCommand, PaymentKind, PaymentStatus};
use domain::payment_method::PaymentMethod;
use domain::tenant::Tenant;
use domain::top_up::{is_offered, OfferedPlan, PurchaseIds, TopUp, TopUpCommand, TopUpPurchase};
use projections::read_models::payment_method_list::PaymentMethodListProjection;
use projections::read_models::plan_list::PlanListProjection;
use projections::read_models::subscription_list::SubscriptionListProjection;
use projections::read_models::top_up_list::{TopUpListProjection, TopUpView};

use crate::charges::{ChargeOutcome, NO_PAYMENT_METHOD};
use crate::context::App;
use crate::credits::ledger_id;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::ids::{parse_id, required_id};
use crate::principal::{CommandMetadata, Principal};
use crate::refusals::command_error;

pub const TOP_UP_NOT_FOUND: &str = "Top-up not found";

/// A top-up as the merchant asks for it; the rules check each field.
#[derive(Debug, Clone, Default)]
pub struct NewTopUp {
    pub feature_slug: Option<String>,
    pub name: Option<String>,
    pub credits_per_unit: Option<i64>,
    pub unit_amount_cents: Option<i64>,
    pub currency: Option<String>,
    pub plan_ids: Option<Vec<String>>,
    pub expires_after_days: Option<i64>,
    pub max_quantity: Option<i64>,
}

/// What a purchase came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurchaseOutcome {
    /// Charged: the invoice is paid and the credits are granted.
    Paid {
        payment_id: PaymentId,
        purchase: TopUpPurchase,
    },
    /// The provider has not decided yet (its webhook settles it, and then the purchase).
    Pending {
        payment_id: PaymentId,
        purchase: TopUpPurchase,
    },
}

impl App {
    /// Offers credits of a feature for sale, to the named plans (all in its currency) or to
    /// every plan in its currency.
    pub async fn create_top_up(
        &self,
        metadata: &CommandMetadata,
        new: NewTopUp,
    ) -> Result<TopUpView, AppError> {
        let tenant = metadata.tenant().clone();
        let mut plans = Vec::new();
        for (index, raw) in new.plan_ids.unwrap_or_default().iter().enumerate() {
            let id: PlanId = parse_id(raw)
                .map_err(|_| AppError::invalid(format!("planIds[{index}]: not a plan id")))?;
            let plan = PlanListProjection::get(&self.pool, &tenant, id.as_str())
                .await?
                .ok_or_else(|| AppError::invalid(format!("planIds[{index}]: no such plan")))?;
            let currency = Currency::parse(&plan.currency)
                .map_err(|e| AppError::internal("Failed to create top-up", e))?;
            plans.push(OfferedPlan { id, currency });
        }
        let id: TopUpId = metadata.new_id("top-up");
        let command = TopUpCommand::CreateTopUp {
            id: id.clone(),
            tenant: tenant.clone(),
            feature_slug: new.feature_slug,
            name: new.name,
            credits_per_unit: new.credits_per_unit,
            unit_amount_cents: new.unit_amount_cents,
            currency: new.currency,
            plans,
            expires_after_days: new.expires_after_days,
            max_quantity: new.max_quantity,
        };
        self.top_ups
            .execute_new(id.as_str(), command, metadata)
            .await
            .map_err(command_error::<TopUp>)?;
        TopUpListProjection::get(&self.pool, &tenant, id.as_str())
            .await?
            .ok_or_else(|| AppError::internal("Failed to create top-up", "no top-up after create"))
    }

    /// The tenant's top-ups, oldest first, a page at a time, and whether more follow.
    pub async fn list_top_ups(
        &self,
        principal: &Principal,
        limit: Option<i64>,
        starting_after: Option<&str>,
    ) -> Result<(Vec<TopUpView>, bool), AppError> {
        if let Some(after) = starting_after {
            parse_id::<TopUpId>(after)?;
        }
        Ok(TopUpListProjection::list(&self.pool, &principal.tenant, starting_after, limit).await?)
    }

    /// The top-ups the customer may buy: those offered on its live subscription's plan.
    pub async fn offered_top_ups(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
    ) -> Result<Vec<TopUpView>, AppError> {
        let plan = self.customer_plan(tenant, customer_id).await?;
        let (all, _) = TopUpListProjection::list(&self.pool, tenant, None, None).await?;
        let mut offered = Vec::new();
        for view in all {
            let plan_ids: Vec<PlanId> = view
                .plan_ids()
                .iter()
                .filter_map(|id| PlanId::parse(id).ok())
                .collect();
            let currency = Currency::parse(&view.currency)
                .map_err(|e| AppError::internal("Failed to read the top-ups", e))?;
            if is_offered(&plan_ids, &currency, plan.as_ref()) {
                offered.push(view);
            }
        }
        Ok(offered)
    }

    /// Buys `quantity` units of top-up `top_up_id` for the customer, charging its default
    /// payment method now: a recorded flow. A declined card is a 402 with its message.
    pub async fn purchase_top_up(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
        top_up_id: Option<&str>,
        quantity: Option<i64>,
    ) -> Result<PurchaseOutcome, AppError> {
        let tenant = metadata.tenant().clone();
        let top_up_id: TopUpId = required_id(top_up_id, "topUpId")
            .map_err(|_| AppError::invalid("topUpId is required: a top-up's id (tu_…)"))?;
        let top_up = self
            .offered_top_up(&tenant, customer_id, &top_up_id)
            .await?;
        // Refused before anything is recorded: the quantity, then a card to charge.
        let placeholder = PurchaseIds {
            invoice_id: InvoiceId::generate(),
            grant_id: CreditGrantId::generate(),
        };
        top_up
            .purchase(&tenant, quantity, self.clock.now_for(&tenant), placeholder)
            .map_err(|e| AppError::invalid(e.to_string()))?;
        if self
            .default_payment_method(&tenant, customer_id)
            .await?
            .is_none()
        {
            return Err(AppError::conflict(NO_PAYMENT_METHOD));
        }
        let input = FlowInput::PurchaseTopUp {
            customer_id: customer_id.clone(),
            top_up_id: top_up_id.clone(),
            quantity: quantity.unwrap_or_default(),
        };
        let customer_id = customer_id.clone();
        self.in_flow(metadata, input, move |app, metadata| async move {
            app.purchase_in_flow(
                &metadata,
                &customer_id,
                &top_up_id,
                quantity.unwrap_or_default(),
            )
            .await
        })
        .await
    }

    pub(crate) async fn purchase_in_flow(
        &self,
        metadata: &CommandMetadata,
        customer_id: &CustomerId,
        top_up_id: &TopUpId,
        quantity: i64,
    ) -> Result<PurchaseOutcome, AppError> {
        let tenant = metadata.tenant().clone();
        let flow = metadata
            .flow
            .as_ref()
            .ok_or_else(|| AppError::internal("Failed to buy credits", "no flow"))?;
        let payment_id: PaymentId = flow.derived_id("topup.payment");
        let payment = self
            .payments
            .current(payment_id.as_str())
            .await
            .map_err(command_error::<Payment>)?;
        if !payment.exists() {
            let top_up = self.offered_top_up(&tenant, customer_id, top_up_id).await?;
            let ids = PurchaseIds {
                invoice_id: flow.derived_id("topup.invoice"),
                grant_id: flow.derived_id("topup.grant"),
            };
            let purchase = top_up
                .purchase(&tenant, Some(quantity), self.clock.now_for(&tenant), ids)
                .map_err(|e| AppError::invalid(e.to_string()))?;
            let method = self
                .default_payment_method(&tenant, customer_id)
                .await?
                .ok_or_else(|| AppError::conflict(NO_PAYMENT_METHOD))?;
            let command = PaymentCommand::Initiate {
                id: payment_id.clone(),
                tenant: tenant.clone(),
                customer_id: customer_id.clone(),
                invoice_id: None,
                payment_method_id: method.id.clone(),
                provider: method.provider.unwrap_or_default(),
                kind: PaymentKind::Charge,
                amount_cents: purchase.amount_cents(),
                currency: top_up
                    .currency
                    .clone()
                    .ok_or_else(|| AppError::internal("Failed to buy credits", "no currency"))?,
                refunded_payment_id: None,
                top_up: Some(purchase),
            };
            self.payments
                .execute(payment_id.as_str(), command, metadata)
                .await
                .map_err(command_error::<Payment>)?;
        }
        let outcome = self.complete_charge(metadata, &payment_id).await?;
        let purchase = self
            .payments
            .current(payment_id.as_str())
            .await
            .map_err(command_error::<Payment>)?
            .top_up
            .ok_or_else(|| AppError::internal("Failed to buy credits", "no purchase"))?;
        match outcome {
            ChargeOutcome::Succeeded { payment_id } => Ok(PurchaseOutcome::Paid {
                payment_id,
                purchase,
            }),
            ChargeOutcome::Pending { .. } | ChargeOutcome::NothingDue => {
                Ok(PurchaseOutcome::Pending {
                    payment_id,
                    purchase,
                })
            }
            ChargeOutcome::Failed { code, message, .. } => Err(AppError::PaymentFailed {
                code: code.unwrap_or_else(|| "card_declined".to_owned()),
                message,
            }),
        }
    }

    /// Applies settled top-up charge `payment`: a success makes the purchase's paid invoice
    /// and its grant, each once whoever else applies the same settlement.
    pub(crate) async fn settle_top_up(
        &self,
        metadata: &CommandMetadata,
        payment: &Payment,
        purchase: &TopUpPurchase,
    ) -> Result<ChargeOutcome, AppError> {
        let payment_id = payment
            .id
            .clone()
            .ok_or_else(|| AppError::internal("Failed to buy credits", "no payment"))?;
        if payment.status == Some(PaymentStatus::Succeeded) {
            // The customer has paid: what it bought must come. Any failure to deliver is
            // ours, never an answer that ends the purchase: as an internal error the flow is
            // let go and resumed (and a provider redelivers its webhook) until it is done.
            if let Err(error) = self
                .deliver_top_up(metadata, payment, &payment_id, purchase)
                .await
            {
                return Err(match error {
                    AppError::Internal(_) => error,
                    refused => AppError::internal(
                        "Failed to deliver the credits bought; they are being retried",
                        refused.message(),
                    ),
                });
            }
        }
        Ok(ChargeOutcome::of(payment_id, payment))
    }

    /// The paid invoice of one line, then the grant: each step skipped when done already.
    async fn deliver_top_up(
        &self,
        metadata: &CommandMetadata,
        payment: &Payment,
        payment_id: &PaymentId,
        purchase: &TopUpPurchase,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant().clone();
        let customer_id = payment
            .customer_id
            .clone()
            .ok_or_else(|| AppError::internal("Failed to buy credits", "no customer"))?;
        let invoice_id = &purchase.invoice_id;
        let draft = InvoiceCommand::CreateDraft {
            id: invoice_id.clone(),
            tenant: tenant.clone(),
            customer_id: customer_id.clone(),
            subscription_id: None,
            currency: payment
                .currency
                .as_ref()
                .map(|c| c.as_str().to_owned())
                .unwrap_or_default(),
            lines: vec![LineInput {
                description: format!("{} ({} credits)", purchase.name, purchase.credits),
                quantity: purchase.quantity,
                unit_amount_cents: purchase.unit_amount_cents,
                period_start: None,
                period_end: None,
            }],
            period_start: None,
            period_end: None,
        };
        match self
            .invoices
            .execute(invoice_id.as_str(), draft, metadata)
            .await
        {
            Ok(_) | Err(AggregateError::UserError(InvoiceError::AlreadyExists)) => {}
            Err(e) => return Err(command_error::<Invoice>(e)),
        }
        let invoice = self
            .invoices
            .current(invoice_id.as_str())
            .await
            .map_err(command_error::<Invoice>)?;
        if invoice.status == Some(InvoiceStatus::Draft) {
            let header = self.document_header(&tenant, &customer_id).await?;
            let issue = |number: String| InvoiceCommand::Issue {
                tenant: tenant.clone(),
                number,
                due_date: None,
                header: header.clone(),
            };
            let series = self.series_of(&tenant, DocumentType::Standard).await?;
            if let Err(error) = self
                .with_next_number(&tenant, &series, issue, invoice_id, metadata, None)
                .await
            {
                // Issued by a racing settlement meanwhile is as good; anything else is not.
                let now = self
                    .invoices
                    .current(invoice_id.as_str())
                    .await
                    .map_err(command_error::<Invoice>)?;
                if now.status == Some(InvoiceStatus::Draft) {
                    return Err(error);
                }
            }
        }
        self.invoices
            .execute(
                invoice_id.as_str(),
                InvoiceCommand::RecordPayment {
                    tenant: tenant.clone(),
                    payment_id: payment_id.clone(),
                    amount_cents: payment.amount_cents,
                },
                metadata,
            )
            .await
            .map_err(command_error::<Invoice>)?;
        let grant = CreditCommand::Grant {
            tenant: tenant.clone(),
            customer_id: customer_id.clone(),
            feature_slug: purchase.feature_slug.clone(),
            grant: NewGrant {
                id: purchase.grant_id.clone(),
                amount: purchase.credits,
                source: GrantSource::Topup,
                priority: None,
                // From the purchase, which its expiry counts from.
                starts_at: Some(purchase.purchased_at),
                expires_at: purchase.expires_at,
                reference_code: Some(invoice_id.to_string()),
                notes: None,
                feature_name: None,
            },
        };
        match self
            .credits
            .execute(
                &ledger_id(&customer_id, &purchase.feature_slug),
                grant,
                metadata,
            )
            .await
        {
            Ok(_) | Err(AggregateError::UserError(CreditError::GrantExists)) => Ok(()),
            Err(e) => Err(command_error::<CreditLedger>(e)),
        }
    }

    /// Top-up `id` as the customer may buy it: the tenant's, offered on the customer's plan.
    async fn offered_top_up(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
        id: &TopUpId,
    ) -> Result<TopUp, AppError> {
        let top_up = self
            .top_ups
            .current(id.as_str())
            .await
            .map_err(command_error::<TopUp>)?;
        let plan = self.customer_plan(tenant, customer_id).await?;
        if top_up.tenant.as_ref() != Some(tenant) || !top_up.is_offered_to(plan.as_ref()) {
            return Err(AppError::not_found(TOP_UP_NOT_FOUND));
        }
        Ok(top_up)
    }

    /// The plan of the customer's live subscription, if any.
    async fn customer_plan(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
    ) -> Result<Option<OfferedPlan>, AppError> {
        let Some(subscription) =
            SubscriptionListProjection::live_for_customer(&self.pool, tenant, customer_id).await?
        else {
            return Ok(None);
        };
        let Some(plan) =
            PlanListProjection::get(&self.pool, tenant, subscription.plan_id.as_str()).await?
        else {
            return Ok(None);
        };
        let currency = Currency::parse(&plan.currency)
            .map_err(|e| AppError::internal("Failed to read the plan", e))?;
        Ok(Some(OfferedPlan {
            id: plan.id,
            currency,
        }))
    }

    /// The card a purchase charges: the one the customer's live subscription charges (the
    /// portal's "default"), else the customer's newest.
    pub(crate) async fn default_payment_method(
        &self,
        tenant: &Tenant,
        customer_id: &CustomerId,
    ) -> Result<Option<PaymentMethod>, AppError> {
        let subscribed =
            SubscriptionListProjection::live_for_customer(&self.pool, tenant, customer_id)
                .await?
                .and_then(|subscription| subscription.payment_method_id);
        let methods =
            PaymentMethodListProjection::for_customer(&self.pool, tenant, customer_id).await?;
        let chosen = methods
            .iter()
            .find(|method| subscribed.as_deref() == Some(method.id.as_str()))
            .or_else(|| {
                methods
                    .iter()
                    .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            });
        let Some(chosen) = chosen else {
            return Ok(None);
        };
        let method = self
            .payment_methods
            .current(chosen.id.as_str())
            .await
            .map_err(command_error::<PaymentMethod>)?;
        Ok((method.exists() && !method.is_removed()).then_some(method))
    }
}
