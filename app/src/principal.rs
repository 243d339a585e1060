//! Who is calling, and in which request: every use-case that writes takes a
//! [`CommandMetadata`], which the event store records with each event it produces.

use std::collections::HashMap;

use domain::id::PrefixedId;
use domain::tenant::Tenant;
use projections::event_store::TENANT_METADATA;
use serde::{Deserialize, Serialize};

use crate::flows::FlowRun;

/// Who is calling: the tenant, who acts for it (a key's id or a portal session's), and, for a
/// portal session, the one customer it may reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub tenant: Tenant,
    pub key_id: String,
    pub session: Option<PortalSession>,
}

/// The customer a portal session was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalSession {
    pub id: String,
    pub customer_id: String,
    pub external_customer_id: String,
}

impl Principal {
    /// The caller a live portal session stands for: its tenant, acting for its one customer.
    pub fn of_session(session: projections::tables::portal_sessions::LiveSession) -> Self {
        Principal {
            tenant: session.tenant,
            key_id: format!("portal_session:{}", session.id),
            session: Some(PortalSession {
                id: session.id,
                customer_id: session.customer_id,
                external_customer_id: session.external_customer_id,
            }),
        }
    }

    /// Whose `Idempotency-Key`s this caller's are among: a secret key's tenant, or a portal
    /// session's one customer, so that two customers' sessions never share a stored response.
    pub fn idempotency_scope(&self) -> String {
        match &self.session {
            Some(session) => format!("{}:{}", self.tenant.key(), session.customer_id),
            None => self.tenant.key(),
        }
    }

    /// Whether the caller may act on customer `customer_id`'s things: a secret key on any of
    /// its tenant's, a portal session on its own customer's only.
    pub fn reaches_customer(&self, customer_id: &str) -> bool {
        self.session
            .as_ref()
            .is_none_or(|session| session.customer_id == customer_id)
    }
}

/// Who asked for a command and in which request; stored with every event it produces.
#[derive(Debug, Clone)]
pub struct CommandMetadata {
    pub principal: Principal,
    pub request_id: Option<String>,
    /// The flow (or keyed request) the command is a step of: its id goes with every event, so
    /// that a resumed flow skips the steps that happened, and ids it makes are the same each
    /// time it runs.
    pub flow: Option<FlowRun>,
}

impl CommandMetadata {
    /// Metadata of work the service does on its own account for `principal`.
    pub fn acting_as(principal: Principal) -> Self {
        Self {
            principal,
            request_id: None,
            flow: None,
        }
    }

    pub fn tenant(&self) -> &Tenant {
        &self.principal.tenant
    }

    /// A new id of kind `I` for the thing this command makes, named `role` among the things
    /// its flow makes: random, or, in a flow, derived from the flow's id, so that the flow run
    /// again (a retry of its key, a resume) makes the same thing rather than another.
    pub fn new_id<I: PrefixedId>(&self, role: &str) -> I {
        match &self.flow {
            Some(flow) => flow.derived_id(role),
            None => I::generate(),
        }
    }

    pub(crate) fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::from([
            (TENANT_METADATA.to_owned(), self.principal.tenant.key()),
            ("actor".to_owned(), self.principal.key_id.clone()),
        ]);
        if let Some(id) = &self.request_id {
            map.insert("requestId".to_owned(), id.clone());
        }
        if let Some(flow) = &self.flow {
            map.insert("flowId".to_owned(), flow.id.clone());
        }
        map
    }
}
