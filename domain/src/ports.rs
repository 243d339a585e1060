//! What the domain needs from the outside world, as traits the outer layers implement.

use async_trait::async_trait;

use crate::email::Email;
use crate::id::CustomerId;
use crate::tenant::Tenant;

/// The uniqueness the Customer rules ask about: among a tenant's customers that are not
/// deleted, is an email (compared case-insensitively) or an external id already taken by a
/// customer other than `except`?
///
/// This answer gives the caller a precise error early; the guarantee under concurrency comes
/// from the unique indexes of the read model the event store writes in the same statement as
/// the events.
#[async_trait]
pub trait CustomerUniqueness: Send + Sync {
    async fn email_in_use(
        &self,
        tenant: &Tenant,
        email: &Email,
        except: Option<&CustomerId>,
    ) -> Result<bool, PortError>;

    async fn external_id_in_use(
        &self,
        tenant: &Tenant,
        external_id: &str,
        except: Option<&CustomerId>,
    ) -> Result<bool, PortError>;
}

/// A port could not answer (the database is down, say). Never the caller's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PortError(pub String);
