//! The customer portal: which customer a portal request reaches, its overview (read from the
//! `portal_overview` read model with read-your-writes), its subscription status, and the
//! sessions that let one customer in.
//!
//! A secret key reaches any live customer of its tenant, named by `externalCustomerId`; a
//! portal session reaches its own customer only, and any other id it sends is "not found",
//! exactly like another tenant's.

use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use domain::subscription::PlanSnapshot;
use projections::read_models::customer_list::{
    CustomerFilter, CustomerListProjection, CustomerListView,
};
use projections::read_models::portal_overview::{
    PortalLookup, PortalOverview, PortalOverviewProjection,
};
use projections::read_models::subscription_list::SubscriptionListProjection;
use projections::tables::portal_sessions::{self, NewSession};
use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::auth::hash_secret;
use crate::context::App;
use crate::customers::NOT_FOUND;
use crate::error::AppError;
use crate::portal_billing::OVERVIEW_ITEMS;
use crate::principal::{CommandMetadata, Principal};
use crate::return_url::ReturnUrl;

/// How long a portal read waits for its projection to apply writes that committed before it,
/// while the projection can apply them. Past this the read folds the pending events itself.
const FRESHNESS_WAIT: Duration = Duration::from_secs(10);
/// How long it waits when the projection cannot apply them (a transaction older than them is
/// still running somewhere on the server, and may stay so for long): a moment, in case it is
/// about to end, then the read folds the pending events itself.
const HELD_BACK_WAIT: Duration = Duration::from_millis(250);

/// How long a portal session lets its customer in.
const SESSION_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

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
) -> Result<Requested<'a>, AppError> {
    let external_customer_id = external_customer_id.filter(|id| !id.trim().is_empty());
    match (&principal.session, external_customer_id) {
        (Some(session), Some(asked)) if asked != session.external_customer_id => {
            Err(AppError::not_found(NOT_FOUND))
        }
        (Some(session), _) => Ok(Requested::Own(&session.customer_id)),
        (None, Some(external_id)) => Ok(Requested::External(external_id)),
        (None, None) => Err(AppError::invalid("externalCustomerId is required")),
    }
}

/// A customer's subscription as the status endpoint shows it: its plan as it was started.
#[derive(Debug, Clone)]
pub struct ActiveSubscription {
    pub id: String,
    pub plan: PlanSnapshot,
    pub started_at: Option<DateTime<Utc>>,
}

/// A new portal session: its token is shown once.
#[derive(Debug, Clone)]
pub struct NewPortalSession {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub return_url: Option<String>,
}

fn random_token() -> String {
    let secret: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("ps_{secret}")
}

impl App {
    /// The live customer a portal request acts on.
    pub async fn portal_customer(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
    ) -> Result<CustomerListView, AppError> {
        let customer = match requested(principal, external_customer_id)? {
            Requested::Own(id) => {
                CustomerListProjection::get(&self.pool, &principal.tenant, id).await?
            }
            Requested::External(external_id) => {
                let filter = CustomerFilter {
                    external_customer_id: Some(external_id.to_owned()),
                    limit: Some(1),
                    ..CustomerFilter::default()
                };
                CustomerListProjection::list(&self.pool, &principal.tenant, &filter)
                    .await?
                    .customers
                    .into_iter()
                    .next()
            }
        };
        customer.ok_or_else(|| AppError::not_found(NOT_FOUND))
    }

    /// Links one of the portal customer's payment methods to its active subscription (see
    /// [`App::set_subscription_payment_method`]).
    pub async fn set_portal_subscription_payment_method(
        &self,
        metadata: &CommandMetadata,
        external_customer_id: Option<&str>,
        payment_method_id: Option<&str>,
    ) -> Result<(), AppError> {
        let customer = self
            .portal_customer(&metadata.principal, external_customer_id)
            .await?;
        self.set_subscription_payment_method(metadata, &customer.id, payment_method_id)
            .await
    }

    /// The customer's portal overview. One indexed read, repeated only while the projection
    /// has yet to apply writes of this tenant that committed before the request: a write
    /// acknowledged to the caller shows here.
    pub async fn portal_overview(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
    ) -> Result<PortalOverview, AppError> {
        let mut overview = self.portal_account(principal, external_customer_id).await?;
        // Invoices and payments come from their inline read models: current at once.
        let customer = overview.customer.id.clone();
        (overview.invoices, _) = self
            .customer_invoices(&principal.tenant, &customer, None, OVERVIEW_ITEMS)
            .await?;
        (overview.payments, _) = self
            .customer_payments(&principal.tenant, &customer, None, OVERVIEW_ITEMS)
            .await?;
        Ok(overview)
    }

    /// The overview's customer, subscription and payment methods, without its invoices and
    /// payments (for the hosted page, whose other tabs list those).
    pub async fn portal_account(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
    ) -> Result<PortalOverview, AppError> {
        let lookup = match requested(principal, external_customer_id)? {
            Requested::Own(id) => PortalLookup::Id(id),
            Requested::External(external_id) => PortalLookup::ExternalId(external_id),
        };
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let overview = loop {
            let read =
                PortalOverviewProjection::read(&self.pool, &principal.tenant, &lookup).await?;
            if !read.behind {
                break read.overview;
            }
            let waited = started.elapsed();
            if (read.held_back && waited > HELD_BACK_WAIT) || waited > FRESHNESS_WAIT {
                // The runner is held back (by a long transaction anywhere on the server, say),
                // or slow: fold the tenant's committed events here instead of waiting for it.
                tracing::info!("portal_overview is behind the log; answering from the log");
                break PortalOverviewProjection::read_with_pending(
                    &self.pool,
                    &principal.tenant,
                    &lookup,
                )
                .await
                .map_err(|e| AppError::internal("Internal server error", e))?;
            }
            self.portal.nudge();
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        };
        overview.ok_or_else(|| AppError::not_found(NOT_FOUND))
    }

    /// The customer and its active subscription, if any (past due counts: the customer keeps
    /// it through the grace period), with the plan it is on.
    pub async fn subscription_status(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
    ) -> Result<(CustomerListView, Option<ActiveSubscription>), AppError> {
        let customer = self
            .portal_customer(principal, external_customer_id)
            .await?;
        let customer_id = customer.id.clone();
        let live = SubscriptionListProjection::live_for_customer(
            &self.pool,
            &principal.tenant,
            &customer_id,
        )
        .await?;
        let subscription = match live {
            None => None,
            Some(live) => {
                let current = self
                    .subscriptions
                    .current(live.id.as_str())
                    .await
                    .map_err(|e| AppError::internal("Failed to read subscription", e))?;
                current.plan.map(|plan| ActiveSubscription {
                    id: live.id.to_string(),
                    plan,
                    started_at: current.started_at,
                })
            }
        };
        Ok((customer, subscription))
    }

    /// Lets one customer into the portal for an hour, with a token that reaches that customer
    /// only. Only the token's hash is kept.
    pub async fn create_portal_session(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
    ) -> Result<NewPortalSession, AppError> {
        self.create_portal_session_returning(principal, external_customer_id, None)
            .await
    }

    /// [`App::create_portal_session`] with the merchant's page the hosted portal links back to.
    pub async fn create_portal_session_returning(
        &self,
        principal: &Principal,
        external_customer_id: Option<&str>,
        return_url: Option<&str>,
    ) -> Result<NewPortalSession, AppError> {
        let return_url = return_url.map(ReturnUrl::parse).transpose()?;
        let customer = self
            .portal_customer(principal, external_customer_id)
            .await?;
        let token = random_token();
        let id = format!("pses_{}", uuid::Uuid::now_v7().simple());
        let expires_at = (self.clock.now() + SESSION_LIFETIME).trunc_subsecs(6);
        portal_sessions::insert(
            &self.pool,
            &NewSession {
                id: &id,
                token_hash: &hash_secret(&token),
                tenant: &principal.tenant,
                customer_id: customer.id.as_str(),
                external_customer_id: customer.external_customer_id.as_deref().unwrap_or_default(),
                expires_at,
                return_url: return_url.as_ref().map(ReturnUrl::as_str),
            },
        )
        .await?;
        Ok(NewPortalSession {
            token,
            expires_at,
            return_url: return_url.map(|url| url.as_str().to_owned()),
        })
    }
}
