//! The audit API's reads: a customer's events, and the tenant's whole feed, as the log holds
//! them. (A customer as it was is [`App::customer`] with an `AsOf`.)

use cqrs_es::Aggregate;
use domain::customer::Customer;
use domain::id::CustomerId;
use projections::event_store::feed::{self, FeedPage, StoredEvent};

use crate::context::App;
use crate::customers::NOT_FOUND;
use crate::error::AppError;
use crate::ids::parse_id;
use crate::principal::Principal;

impl App {
    /// A customer's events in order, deleted customers included.
    pub async fn customer_events(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Vec<StoredEvent>, AppError> {
        let id: CustomerId = parse_id(id)?;
        let events =
            feed::aggregate_events(&self.pool, &principal.tenant, Customer::TYPE, id.as_str())
                .await?;
        if events.is_empty() {
            return Err(AppError::not_found(NOT_FOUND));
        }
        Ok(events)
    }

    /// The tenant's settled events after position `after`, in commit order, a page at a time.
    pub async fn event_feed(
        &self,
        principal: &Principal,
        after: Option<i64>,
        limit: Option<i64>,
    ) -> Result<FeedPage, AppError> {
        let after = after.unwrap_or(0);
        if after < 0 {
            return Err(AppError::invalid("after must be 0 or more"));
        }
        let limit = limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(AppError::invalid("limit must be between 1 and 1000"));
        }
        Ok(feed::tenant_feed(&self.pool, &principal.tenant, after, limit).await?)
    }
}
