//! Payments as the API reads them: a tenant's charges and refunds, newest first.

use domain::id::PaymentId;
use projections::read_models::payment_list::{PaymentFilter, PaymentListProjection, PaymentView};

use crate::context::App;
use crate::error::AppError;
use crate::ids::parse_id;
use crate::principal::Principal;

pub const NOT_FOUND: &str = "Payment not found";

impl App {
    /// The tenant's payment `id`.
    pub async fn payment(&self, principal: &Principal, id: &str) -> Result<PaymentView, AppError> {
        let id: PaymentId = parse_id(id).map_err(|_| AppError::not_found(NOT_FOUND))?;
        PaymentListProjection::get(&self.pool, &principal.tenant, id.as_str())
            .await?
            .ok_or_else(|| AppError::not_found(NOT_FOUND))
    }

    /// The tenant's payments of invoices `invoice_ids`, newest first.
    pub async fn payments_of_invoices(
        &self,
        principal: &Principal,
        invoice_ids: &[String],
    ) -> Result<Vec<PaymentView>, AppError> {
        Ok(PaymentListProjection::for_invoices(&self.pool, &principal.tenant, invoice_ids).await?)
    }

    /// The tenant's payments that match `filter`, newest first, a page at a time.
    pub async fn list_payments(
        &self,
        principal: &Principal,
        filter: &PaymentFilter,
        starting_after: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<PaymentView>, bool), AppError> {
        if let Some(after) = starting_after {
            parse_id::<PaymentId>(after)?;
        }
        Ok(PaymentListProjection::list(
            &self.pool,
            &principal.tenant,
            filter,
            starting_after,
            limit,
        )
        .await?)
    }
}
