//! Which customer a portal request may reach. A secret key reaches any live customer of its
//! tenant, named by `externalCustomerId`; a portal session reaches its own customer only, and
//! any other id it sends is "not found", exactly like another tenant's.

use projections::customer_list::{CustomerFilter, CustomerListProjection, CustomerListView};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::customers::NOT_FOUND;
use crate::state::AppState;

/// The customer a portal request names, before anything is looked up.
pub enum Requested<'a> {
    /// A session's own customer, by id.
    Own(&'a str),
    /// The merchant's customer with this external id.
    External(&'a str),
}

/// Which customer a portal request names: a session its own (another external id is "not
/// found"), a secret key the one its `externalCustomerId` names (which it must send).
pub fn requested<'a>(
    principal: &'a Principal,
    external_customer_id: Option<&'a str>,
) -> Result<Requested<'a>, ApiError> {
    let external_customer_id = external_customer_id.filter(|id| !id.trim().is_empty());
    match (&principal.session, external_customer_id) {
        (Some(session), Some(asked)) if asked != session.external_customer_id => {
            Err(ApiError::not_found(NOT_FOUND))
        }
        (Some(session), _) => Ok(Requested::Own(&session.customer_id)),
        (None, Some(external_id)) => Ok(Requested::External(external_id)),
        (None, None) => Err(ApiError::bad_request("externalCustomerId is required")),
    }
}

/// The live customer a portal request acts on.
pub async fn portal_customer(
    state: &AppState,
    principal: &Principal,
    external_customer_id: Option<&str>,
) -> Result<CustomerListView, ApiError> {
    let customer = match requested(principal, external_customer_id)? {
        Requested::Own(id) => {
            CustomerListProjection::get(&state.pool, &principal.tenant, id).await?
        }
        Requested::External(external_id) => {
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
