//! Charging what an invoice owes: the payment is recorded `pending` before the provider is
//! asked, with its id as the provider's idempotency key; the provider's answer settles it;
//! a success is recorded on the invoice (paid once covered) and brings a past-due
//! subscription back; a failure makes the subscription past due, its grace counted from the
//! invoice's first failure.
//!
//! A charge is a recorded flow (`flows.rs`). Killed after the provider was asked and before
//! its answer was recorded, the flow is resumed: the same payment id asks the provider again,
//! which answers the first charge again instead of charging twice; killed before, it asks
//! for the first time. No double charge, no lost charge.

use chrono::{DateTime, Duration, Utc};
use domain::id::{InvoiceId, PaymentId, PrefixedId};
use domain::invoice::{Invoice, InvoiceCommand, InvoiceStatus};
use domain::payment::{Payment, PaymentCommand, PaymentKind, PaymentStatus, SettlementOutcome};
use domain::payment_method::PaymentMethod;
use domain::subscription::{Subscription, SubscriptionCommand, SubscriptionStatus};
use domain::tenant::Tenant;
use projections::read_models::invoice_list::InvoiceListProjection;
use projections::read_models::payment_list::{PaymentFilter, PaymentListProjection};
use projections::read_models::payment_method_list::PaymentMethodListProjection;
use projections::tables::{merchants, provider_links};
use projections::ClaimKind;
use providers::gateway::{ChargeRequest, ChargeStatus, GatewayError};
use sha2::{Digest, Sha256};

use crate::context::App;
use crate::error::AppError;
use crate::flows::FlowInput;
use crate::gateways::MerchantGateway;
use crate::principal::CommandMetadata;
use crate::refusals::{command_error, is_claim};

/// How long a past-due subscription has to pay before it is canceled, unless its merchant
/// set its own `gracePeriodDays` (`billstream merchants create --grace-period-days`).
pub const GRACE_PERIOD_DAYS: i64 = 7;
/// Retries after the first failure, in days from it.
pub const RETRY_AFTER_DAYS: [i64; 3] = [1, 3, 5];
pub const NO_PAYMENT_METHOD: &str = "No payment method on file";
/// A pay of an invoice while another charge of it is pending or succeeded.
pub const CHARGE_IN_PROGRESS: &str = "The invoice is being charged already; retry in a moment";

/// What a charge came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The invoice owed nothing.
    NothingDue,
    Succeeded {
        payment_id: PaymentId,
    },
    /// The provider settles it later (by webhook).
    Pending {
        payment_id: PaymentId,
    },
    Failed {
        payment_id: PaymentId,
        code: Option<String>,
        message: String,
    },
}

impl ChargeOutcome {
    /// What payment `payment_id` came to as `payment` stands: succeeded, failed with the
    /// provider's code and message, or still pending.
    pub(crate) fn of(payment_id: PaymentId, payment: &Payment) -> Self {
        match payment.status {
            Some(PaymentStatus::Succeeded) => ChargeOutcome::Succeeded { payment_id },
            Some(PaymentStatus::Failed) => ChargeOutcome::Failed {
                payment_id,
                code: payment.error_code.clone(),
                message: payment.error_message.clone().unwrap_or_default(),
            },
            _ => ChargeOutcome::Pending { payment_id },
        }
    }
}

/// The id of charge `attempt` of `invoice`: the same in every run of the flow that makes it,
/// so the provider (whose idempotency key it is) charges it once.
pub fn charge_id(invoice: &InvoiceId, issued_at: DateTime<Utc>, attempt: u32) -> PaymentId {
    let digest = Sha256::digest(format!("{invoice}:charge:{attempt}"));
    let mut entropy = [0u8; 10];
    entropy.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(issued_at.timestamp_millis()).unwrap_or(0) + u64::from(attempt);
    PaymentId::derived(millis, &entropy)
}

/// States that a flow's own commands left a moment ago, handed to its next step instead of
/// read again: as fresh as a read would be, without its round trip. (Only ever the states of
/// commands just committed: a state remembered from earlier may be stale, and a charge
/// decided on a stale invoice could charge one voided meanwhile.)
#[derive(Default)]
pub(crate) struct JustCommanded {
    pub(crate) invoice: Option<Invoice>,
    pub(crate) subscription: Option<Subscription>,
}

impl App {
    /// Charges what invoice `invoice_id` owes as its charge number `attempt`: a recorded flow.
    pub async fn charge_invoice(
        &self,
        metadata: &CommandMetadata,
        invoice_id: &InvoiceId,
        attempt: u32,
    ) -> Result<ChargeOutcome, AppError> {
        let input = FlowInput::ChargeInvoice {
            invoice_id: invoice_id.clone(),
            attempt,
        };
        let invoice_id = invoice_id.clone();
        self.in_flow(metadata, input, |app, metadata| async move {
            app.charge_in_flow(&metadata, &invoice_id, attempt).await
        })
        .await
    }

    pub(crate) async fn charge_in_flow(
        &self,
        metadata: &CommandMetadata,
        invoice_id: &InvoiceId,
        attempt: u32,
    ) -> Result<ChargeOutcome, AppError> {
        self.charge_with(metadata, invoice_id, attempt, JustCommanded::default())
            .await
    }

    /// [`charge_in_flow`](Self::charge_in_flow), starting from the states `known` that the
    /// flow's own commands just left (what is not known is read).
    pub(crate) async fn charge_with(
        &self,
        metadata: &CommandMetadata,
        invoice_id: &InvoiceId,
        attempt: u32,
        known: JustCommanded,
    ) -> Result<ChargeOutcome, AppError> {
        let tenant = metadata.tenant().clone();
        let invoice = self
            .invoices
            .known_or_current(invoice_id.as_str(), known.invoice)
            .await
            .map_err(command_error::<Invoice>)?;
        let payment_id = charge_id(invoice_id, invoice.issue_date.unwrap_or_default(), attempt);
        let payment = self
            .payments
            .current(payment_id.as_str())
            .await
            .map_err(command_error::<Payment>)?;
        let mut initiated = None;
        if !payment.exists() {
            let due = invoice.amount_due_cents();
            if due == 0 || invoice.status != Some(InvoiceStatus::Issued) {
                return Ok(ChargeOutcome::NothingDue);
            }
            let method = self
                .method_to_charge(&tenant, &invoice, known.subscription)
                .await?;
            let provider = match &method {
                Some(method) => method.provider.unwrap_or_default(),
                None => self.merchant_gateway(&tenant).await?.provider,
            };
            let command = PaymentCommand::Initiate {
                id: payment_id.clone(),
                tenant: tenant.clone(),
                customer_id: invoice
                    .customer_id
                    .clone()
                    .ok_or_else(|| AppError::internal("Failed to charge", "no customer"))?,
                invoice_id: Some(invoice_id.clone()),
                payment_method_id: method.as_ref().and_then(|m| m.id.clone()),
                provider,
                kind: PaymentKind::Charge,
                amount_cents: due,
                currency: invoice
                    .currency
                    .clone()
                    .ok_or_else(|| AppError::internal("Failed to charge", "no currency"))?,
                refunded_payment_id: None,
                top_up: None,
            };
            // Not there a moment ago: the first try appends without reading again (should
            // another run make it meanwhile, the append collides and the retry reads).
            match self
                .payments
                .execute_new(payment_id.as_str(), command, metadata)
                .await
            {
                Ok(payment) => initiated = Some((payment, method)),
                // Another instance (a scheduler racing a test-clock advance) initiated this
                // very charge meanwhile: it is the same payment, completed below.
                Err(cqrs_es::AggregateError::UserError(
                    domain::payment::PaymentError::AlreadyExists,
                )) => {}
                // The invoice has another charge pending or succeeded (`payment_list`'s one
                // live charge per invoice, claimed in the append): a second pay racing the
                // first must not reach the provider. Unless that charge is this very one.
                Err(e) if is_claim(&e, ClaimKind::InvoiceCharge) => {
                    let raced = self
                        .payments
                        .current(payment_id.as_str())
                        .await
                        .map_err(command_error::<Payment>)?;
                    if !raced.exists() {
                        return Err(AppError::conflict(CHARGE_IN_PROGRESS));
                    }
                }
                Err(e) => return Err(command_error::<Payment>(e)),
            }
        }
        self.complete_initiated(metadata, &payment_id, initiated)
            .await
    }

    /// Asks the provider for pending charge `payment_id` (again: the provider answers a repeat
    /// with the first charge), settles it, and applies it to its invoice and subscription.
    pub(crate) async fn complete_charge(
        &self,
        metadata: &CommandMetadata,
        payment_id: &PaymentId,
    ) -> Result<ChargeOutcome, AppError> {
        self.complete_initiated(metadata, payment_id, None).await
    }

    /// [`complete_charge`](Self::complete_charge); `initiated` is the payment as this run
    /// just initiated it, with the method it charges, when it did (read otherwise).
    async fn complete_initiated(
        &self,
        metadata: &CommandMetadata,
        payment_id: &PaymentId,
        initiated: Option<(Payment, Option<PaymentMethod>)>,
    ) -> Result<ChargeOutcome, AppError> {
        let tenant = metadata.tenant().clone();
        let (payment, method) = initiated.unzip();
        let payment = self
            .payments
            .known_or_current(payment_id.as_str(), payment)
            .await
            .map_err(command_error::<Payment>)?;
        let method = method.flatten();
        if payment.status == Some(PaymentStatus::Pending) {
            return match self.ask_provider(&tenant, &payment, method).await? {
                Some(outcome) => self.settle_charge(metadata, payment_id, outcome).await,
                None => Ok(ChargeOutcome::Pending {
                    payment_id: payment_id.clone(),
                }),
            };
        }
        self.apply_settlement(metadata, &payment).await
    }

    /// Settles pending charge `payment_id` as its provider answered, and applies it to its
    /// invoice and subscription.
    pub(crate) async fn settle_charge(
        &self,
        metadata: &CommandMetadata,
        payment_id: &PaymentId,
        outcome: SettlementOutcome,
    ) -> Result<ChargeOutcome, AppError> {
        let tenant = metadata.tenant().clone();
        let settled = self
            .payments
            .execute(
                payment_id.as_str(),
                PaymentCommand::Settle {
                    tenant: tenant.clone(),
                    outcome,
                },
                metadata,
            )
            .await;
        let payment = match settled {
            Ok(payment) => payment,
            // Settled meanwhile by another instance, or by the provider's webhook.
            Err(cqrs_es::AggregateError::UserError(
                domain::payment::PaymentError::AlreadySettled,
            )) => self
                .payments
                .current(payment_id.as_str())
                .await
                .map_err(command_error::<Payment>)?,
            Err(e) => return Err(command_error::<Payment>(e)),
        };
        self.apply_settlement(metadata, &payment).await
    }

    /// Settles charge `payment_id` as its provider reported it (a webhook), and applies it to
    /// its invoice and subscription. Whichever comes first of the provider's answer to the
    /// charge and this report settles it; the other then changes nothing. A payment that is
    /// not the tenant's, or not billstream's, is ignored.
    pub(crate) async fn settle_reported_charge(
        &self,
        metadata: &CommandMetadata,
        payment_id: &str,
        outcome: SettlementOutcome,
    ) -> Result<(), AppError> {
        let Ok(payment_id) = PaymentId::parse(payment_id) else {
            tracing::info!(
                payment = payment_id,
                "a settlement of no payment of ours: ignored"
            );
            return Ok(());
        };
        let payment = self
            .payments
            .current(payment_id.as_str())
            .await
            .map_err(command_error::<Payment>)?;
        if payment.tenant.as_ref() != Some(metadata.tenant()) {
            tracing::info!(payment = %payment_id, "a settlement of another tenant's: ignored");
            return Ok(());
        }
        if payment.status == Some(PaymentStatus::Pending) {
            let settled = self
                .payments
                .execute(
                    payment_id.as_str(),
                    PaymentCommand::Settle {
                        tenant: metadata.tenant().clone(),
                        outcome,
                    },
                    metadata,
                )
                .await;
            match settled {
                Ok(_) => {}
                // Settled meanwhile by the charge's own answer.
                Err(cqrs_es::AggregateError::UserError(
                    domain::payment::PaymentError::AlreadySettled,
                )) => {}
                Err(e) => return Err(command_error::<Payment>(e)),
            }
        }
        let payment = self
            .payments
            .current(payment_id.as_str())
            .await
            .map_err(command_error::<Payment>)?;
        self.apply_settlement(metadata, &payment).await?;
        Ok(())
    }

    /// The provider's answer to charge `payment`; `None` while it has not decided. A charge
    /// with no payment method to take fails at once (and is retried like any other: the
    /// customer may add a card meanwhile).
    /// `method` is the payment's method as read a moment ago, when the caller has it.
    async fn ask_provider(
        &self,
        tenant: &Tenant,
        payment: &Payment,
        method: Option<PaymentMethod>,
    ) -> Result<Option<SettlementOutcome>, AppError> {
        let Some(method_id) = payment.payment_method_id.as_ref() else {
            return Ok(Some(SettlementOutcome::Failed {
                message: NO_PAYMENT_METHOD.to_owned(),
                code: Some("no_payment_method".to_owned()),
            }));
        };
        let gateway = self.merchant_gateway(tenant).await?;
        let method = self
            .payment_methods
            .known_or_current(
                method_id.as_str(),
                method.filter(|method| method.id.as_ref() == Some(method_id)),
            )
            .await
            .map_err(|e| AppError::internal("Failed to charge", e))?;
        let customer_id = payment.customer_id.as_ref().map(|id| id.to_string());
        let provider_customer = match &customer_id {
            Some(customer) => {
                provider_links::provider_customer(
                    &self.pool,
                    tenant,
                    customer,
                    gateway.gateway.name(),
                )
                .await?
            }
            None => None,
        };
        Ok(charge_at(&gateway, payment, &method, provider_customer.as_deref()).await)
    }

    /// Records settled `payment` on its invoice and subscription (each at most once).
    async fn apply_settlement(
        &self,
        metadata: &CommandMetadata,
        payment: &Payment,
    ) -> Result<ChargeOutcome, AppError> {
        let tenant = metadata.tenant().clone();
        let payment_id = payment
            .id
            .clone()
            .ok_or_else(|| AppError::internal("Failed to charge", "no payment"))?;
        if let Some(purchase) = &payment.top_up {
            return self.settle_top_up(metadata, payment, purchase).await;
        }
        let Some(invoice_id) = payment.invoice_id.clone() else {
            return Ok(ChargeOutcome::Succeeded { payment_id });
        };
        match payment.status {
            Some(PaymentStatus::Succeeded) => {
                let invoice = self
                    .invoices
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
                if let Some(subscription_id) = &invoice.subscription_id {
                    if invoice.status == Some(InvoiceStatus::Paid) {
                        let paid = self
                            .subscriptions
                            .execute(
                                subscription_id.as_str(),
                                SubscriptionCommand::MarkPaid { tenant },
                                metadata,
                            )
                            .await;
                        // A subscription canceled meanwhile stays canceled.
                        if let Err(e) = paid {
                            tracing::debug!(error = %e, "paid invoice of a closed subscription");
                        }
                    }
                }
                Ok(ChargeOutcome::Succeeded { payment_id })
            }
            Some(PaymentStatus::Failed) => {
                let invoice = self
                    .invoices
                    .current(invoice_id.as_str())
                    .await
                    .map_err(command_error::<Invoice>)?;
                self.mark_past_due(metadata, &invoice).await?;
                Ok(ChargeOutcome::of(payment_id, payment))
            }
            _ => Ok(ChargeOutcome::of(payment_id, payment)),
        }
    }

    /// Makes the invoice's subscription past due, its grace running from the invoice's first
    /// failed charge (or from now, when none was tried).
    async fn mark_past_due(
        &self,
        metadata: &CommandMetadata,
        invoice: &Invoice,
    ) -> Result<(), AppError> {
        let Some(subscription_id) = &invoice.subscription_id else {
            return Ok(());
        };
        let tenant = metadata.tenant().clone();
        let subscription = self
            .subscriptions
            .current(subscription_id.as_str())
            .await
            .map_err(command_error::<Subscription>)?;
        if subscription.status != Some(SubscriptionStatus::Active) {
            // Past due already (its grace runs from the first failure), or canceled.
            return Ok(());
        }
        let first_failure = match &invoice.id {
            Some(id) => self.first_failure(&tenant, id).await?,
            None => None,
        };
        let from = first_failure.unwrap_or_else(|| self.clock.now_for(&tenant));
        let grace_days = merchants::grace_period_days(&self.pool, &tenant.merchant_id)
            .await?
            .map_or(GRACE_PERIOD_DAYS, i64::from);
        let grace_period_ends_at = from + Duration::days(grace_days);
        self.subscriptions
            .execute(
                subscription_id.as_str(),
                SubscriptionCommand::MarkPastDue {
                    tenant,
                    grace_period_ends_at,
                },
                metadata,
            )
            .await
            .map_err(command_error::<Subscription>)?;
        Ok(())
    }

    /// When invoice `invoice_id`'s first charge failed.
    pub(crate) async fn first_failure(
        &self,
        tenant: &Tenant,
        invoice_id: &InvoiceId,
    ) -> Result<Option<DateTime<Utc>>, AppError> {
        let filter = PaymentFilter {
            invoice_id: Some(invoice_id.to_string()),
            status: Some(PaymentStatus::Failed.as_str().to_owned()),
            ..PaymentFilter::default()
        };
        let (failed, _) =
            PaymentListProjection::list(&self.pool, tenant, &filter, None, 100).await?;
        Ok(failed.iter().filter_map(|p| p.settled_at).min())
    }

    /// What a charge of `invoice` takes: its subscription's payment method, or (an invoice
    /// without one) the customer's newest.
    /// `subscription` is the invoice's subscription as the flow just left it, when known.
    async fn method_to_charge(
        &self,
        tenant: &Tenant,
        invoice: &Invoice,
        subscription: Option<Subscription>,
    ) -> Result<Option<PaymentMethod>, AppError> {
        let method_id = match &invoice.subscription_id {
            Some(subscription_id) => {
                let known = subscription.filter(|known| known.id.as_ref() == Some(subscription_id));
                self.subscriptions
                    .known_or_current(subscription_id.as_str(), known)
                    .await
                    .map_err(command_error::<Subscription>)?
                    .payment_method_id
            }
            None => None,
        };
        let method_id = match (method_id, &invoice.customer_id) {
            (Some(id), _) => Some(id),
            (None, Some(customer)) => {
                PaymentMethodListProjection::for_customer(&self.pool, tenant, customer)
                    .await?
                    .into_iter()
                    .max_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
                    .map(|m| m.id)
            }
            (None, None) => None,
        };
        let Some(method_id) = method_id else {
            return Ok(None);
        };
        let method = self
            .payment_methods
            .current(method_id.as_str())
            .await
            .map_err(|e| AppError::internal("Failed to charge", e))?;
        Ok((method.exists() && !method.is_removed()).then_some(method))
    }
}

impl App {
    /// Records a charge the provider made on its own (Dodo charges its subscriptions) against
    /// the open invoice of the billstream subscription linked to `provider_subscription`, and
    /// applies it. The payment's id is derived from the provider's, so the same payment
    /// reported twice is recorded once. Nothing to record against is logged and ignored.
    pub(crate) async fn record_provider_charge(
        &self,
        metadata: &CommandMetadata,
        provider: &str,
        provider_subscription: &str,
        provider_payment_id: &str,
        amount_cents: Option<i64>,
        failure: Option<(String, String)>,
    ) -> Result<(), AppError> {
        let tenant = metadata.tenant().clone();
        let Some(subscription_id) = provider_links::subscription_of_provider_subscription(
            &self.pool,
            &tenant,
            provider,
            provider_subscription,
        )
        .await?
        else {
            tracing::info!(
                provider_subscription,
                "a charge of no linked subscription: ignored"
            );
            return Ok(());
        };
        let open =
            InvoiceListProjection::open_of_subscription(&self.pool, &subscription_id).await?;
        let Some(invoice_id) = open.first() else {
            tracing::info!(
                subscription_id,
                "a provider's charge with no open invoice: ignored"
            );
            return Ok(());
        };
        let invoice_id = InvoiceId::parse(invoice_id)
            .map_err(|e| AppError::internal("Failed to record the charge", e))?;
        let invoice = self
            .invoices
            .current(invoice_id.as_str())
            .await
            .map_err(command_error::<Invoice>)?;
        let digest = Sha256::digest(format!("{provider}:{provider_payment_id}"));
        let mut entropy = [0u8; 10];
        entropy.copy_from_slice(&digest[..10]);
        // A function of the provider's payment alone, however often and whenever it is
        // reported (lists order payments by when they were made, not by id).
        let payment_id = PaymentId::derived(0, &entropy);
        let subscription = self
            .subscriptions
            .current(subscription_id.as_str())
            .await
            .map_err(command_error::<Subscription>)?;
        let initiated = self
            .payments
            .execute(
                payment_id.as_str(),
                PaymentCommand::Initiate {
                    id: payment_id.clone(),
                    tenant: tenant.clone(),
                    customer_id: invoice
                        .customer_id
                        .clone()
                        .ok_or_else(|| AppError::internal("Failed to record", "no customer"))?,
                    invoice_id: Some(invoice_id.clone()),
                    payment_method_id: subscription.payment_method_id.clone(),
                    provider: domain::provider::Provider::parse(provider).unwrap_or_default(),
                    kind: PaymentKind::Charge,
                    amount_cents: amount_cents
                        .filter(|amount| *amount > 0)
                        .unwrap_or_else(|| invoice.amount_due_cents()),
                    currency: invoice
                        .currency
                        .clone()
                        .ok_or_else(|| AppError::internal("Failed to record", "no currency"))?,
                    refunded_payment_id: None,
                    top_up: None,
                },
                metadata,
            )
            .await;
        match initiated {
            Ok(_)
            | Err(cqrs_es::AggregateError::UserError(
                domain::payment::PaymentError::AlreadyExists,
            )) => {}
            // A charge of ours for this invoice is pending or succeeded: the provider's report
            // is of a payment the invoice does not need a second time.
            Err(e) if is_claim(&e, ClaimKind::InvoiceCharge) => {
                tracing::warn!(
                    invoice = %invoice_id,
                    provider_payment_id,
                    "a provider's charge of an invoice with a live charge of ours: not recorded"
                );
                return Ok(());
            }
            Err(e) => return Err(command_error::<Payment>(e)),
        }
        let outcome = match failure {
            None => SettlementOutcome::Succeeded {
                provider_reference: Some(provider_payment_id.to_owned()),
            },
            Some((code, message)) => SettlementOutcome::Failed {
                message,
                code: Some(code),
            },
        };
        self.settle_reported_charge(metadata, payment_id.as_str(), outcome)
            .await
    }
}

/// What the provider behind `gateway` answers to charge `payment` with `method` (of
/// `provider_customer`, its customer there); `None` while it has not decided.
pub(crate) async fn charge_at(
    gateway: &MerchantGateway,
    payment: &Payment,
    method: &PaymentMethod,
    provider_customer: Option<&str>,
) -> Option<SettlementOutcome> {
    let reference = method
        .provider_reference
        .clone()
        .or_else(|| method.card.as_ref().map(|card| card.last_four.clone()))
        .unwrap_or_default();
    let id = payment
        .id
        .as_ref()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let currency = payment
        .currency
        .as_ref()
        .map(|c| c.as_str().to_owned())
        .unwrap_or_default();
    let request = ChargeRequest {
        payment_id: &id,
        amount_cents: payment.amount_cents,
        currency: &currency,
        provider_customer,
        payment_method: &reference,
        provider_subscription: None,
        description: None,
    };
    match gateway.gateway.charge(&request).await {
        Ok(charge) if charge.status == ChargeStatus::Succeeded => {
            Some(SettlementOutcome::Succeeded {
                provider_reference: Some(charge.provider_payment_id),
            })
        }
        Ok(_) => None,
        Err(GatewayError::Declined { code, message }) => Some(SettlementOutcome::Failed {
            message,
            code: Some(code),
        }),
        // Unreachable, or failing on its side: the payment stays pending, and the scheduler
        // asks again (the same payment id: charged once) a minute on.
        Err(e) => {
            tracing::warn!(error = %e, payment = id, "charge left pending: provider failed");
            None
        }
    }
}
