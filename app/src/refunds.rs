//! Refunds: a credit note on a paid invoice gives the money back through the provider. The
//! refund is recorded `pending` before the provider is asked, with its id (derived from the
//! credit note) as the provider's idempotency key, so a crash in between neither loses nor
//! doubles it; it runs inside the credit note's recorded flow.

use domain::id::{InvoiceId, PaymentId, PrefixedId};
use domain::invoice::Invoice;
use domain::payment::{Payment, PaymentCommand, PaymentKind, PaymentStatus, SettlementOutcome};
use providers::gateway::{ChargeStatus, RefundRequest};
use sha2::{Digest, Sha256};

use crate::context::App;
use crate::error::AppError;
use crate::principal::CommandMetadata;
use crate::refusals::command_error;

/// The id of the refund a credit note makes: the same in every run of its flow.
fn refund_id(credit_note: &InvoiceId, at_millis: u64) -> PaymentId {
    let digest = Sha256::digest(format!("{credit_note}:refund"));
    let mut entropy = [0u8; 10];
    entropy.copy_from_slice(&digest[..10]);
    PaymentId::derived(at_millis, &entropy)
}

impl App {
    /// Refunds `amount_cents` of paid invoice `original` for credit note `credit_note`, from
    /// the invoice's latest succeeded charge. Nothing when the invoice was never paid.
    pub(crate) async fn refund_for_credit_note(
        &self,
        metadata: &CommandMetadata,
        original: &Invoice,
        credit_note: &InvoiceId,
        amount_cents: i64,
    ) -> Result<Option<PaymentId>, AppError> {
        let tenant = metadata.tenant().clone();
        // The charge to refund: the latest succeeded one recorded on the invoice.
        let mut charge = None;
        for id in original.payment_ids.iter().rev() {
            let payment = self
                .payments
                .current(id.as_str())
                .await
                .map_err(command_error::<Payment>)?;
            if payment.status == Some(PaymentStatus::Succeeded)
                && payment.kind == Some(PaymentKind::Charge)
            {
                charge = Some(payment);
                break;
            }
        }
        let Some(charge) = charge else {
            return Ok(None);
        };
        let amount_cents = amount_cents.min(charge.amount_cents);
        if amount_cents <= 0 {
            return Ok(None);
        }
        let at =
            u64::try_from(original.issue_date.unwrap_or_default().timestamp_millis()).unwrap_or(0);
        let id = refund_id(credit_note, at);
        let existing = self
            .payments
            .current(id.as_str())
            .await
            .map_err(command_error::<Payment>)?;
        if !existing.exists() {
            let incomplete = || AppError::internal("Failed to refund", "incomplete charge");
            let command = PaymentCommand::Initiate {
                id: id.clone(),
                tenant: tenant.clone(),
                customer_id: charge.customer_id.clone().ok_or_else(incomplete)?,
                invoice_id: original.id.clone(),
                payment_method_id: charge.payment_method_id.clone(),
                provider: charge.provider.unwrap_or_default(),
                kind: PaymentKind::Refund,
                amount_cents,
                currency: charge.currency.clone().ok_or_else(incomplete)?,
                refunded_payment_id: charge.id.clone(),
                top_up: None,
            };
            self.payments
                .execute(id.as_str(), command, metadata)
                .await
                .map_err(command_error::<Payment>)?;
        } else if existing.status != Some(PaymentStatus::Pending) {
            return Ok(Some(id));
        }
        let gateway = self.merchant_gateway(&tenant).await?;
        let refund = id.to_string();
        let reference = charge.provider_reference.clone().unwrap_or_default();
        let currency = charge
            .currency
            .as_ref()
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default();
        let request = RefundRequest {
            refund_id: &refund,
            provider_payment_id: &reference,
            amount_cents,
            currency: &currency,
        };
        let outcome = match gateway.gateway.refund(&request).await {
            Ok(answer) if answer.status == ChargeStatus::Succeeded => {
                SettlementOutcome::Succeeded {
                    provider_reference: Some(answer.provider_refund_id),
                }
            }
            // The provider settles it later, or could not be reached: it stays pending, and
            // the credit note's flow is let go for a resume to ask again.
            Ok(_) => return Ok(Some(id)),
            Err(e) => return Err(gateway.error(e)),
        };
        self.payments
            .execute(
                id.as_str(),
                PaymentCommand::Settle { tenant, outcome },
                metadata,
            )
            .await
            .map_err(command_error::<Payment>)?;
        Ok(Some(id))
    }
}
