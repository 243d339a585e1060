//! Which customer a portal request may reach. A secret key reaches any live customer of its
//! tenant, named by `externalCustomerId`; a portal session reaches its own customer only, and
//! any other id it sends is "not found", exactly like another tenant's.

use projections::customer_list::{CustomerFilter, CustomerListProjection, CustomerListView};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::customers::NOT_FOUND;
use crate::state::AppState;

/// The live customer a portal request acts on.
pub async fn portal_customer(
    state: &AppState,
    principal: &Principal,
    external_customer_id: Option<&str>,
) -> Result<CustomerListView, ApiError> {
    let external_customer_id = external_customer_id.filter(|id| !id.trim().is_empty());
    let customer = match (&principal.session, external_customer_id) {
        (Some(session), Some(asked)) if asked != session.external_customer_id => None,
        (Some(session), _) => {
            CustomerListProjection::get(&state.pool, &principal.tenant, &session.customer_id)
                .await?
        }
        (None, None) => return Err(ApiError::bad_request("externalCustomerId is required")),
        (None, Some(external_id)) => {
            let filter = CustomerFilter {
                external_customer_id: Some(external_id.to_owned()),
                limit: Some(1),
                ..CustomerFilter::default()
            };
            CustomerListProjection::list(&state.pool, &principal.tenant, &filter)
                .await?
                .customers
                .into_iter()
                .next()
        }
    };
    customer.ok_or_else(|| ApiError::not_found(NOT_FOUND))
}

/// Refuses a portal session where only the merchant may act (an id the session does not own is
/// checked by [`portal_customer`]; this is for resources found by their own id).
pub fn session_owns(principal: &Principal, customer_id: &str) -> bool {
    principal
        .session
        .as_ref()
        .is_none_or(|session| session.customer_id == customer_id)
}
