//! The claims the log's inline read models guard across aggregates (an email, one live
//! subscription per customer, …), and the refusal an append gets when it breaks one. The
//! application layer turns a refusal into its domain's error, in one place.

/// Which unique claim, guarded by an inline projection's index, an append ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClaimKind {
    /// Another live customer of the tenant has the email.
    Email,
    /// Another live customer of the tenant has the external id.
    ExternalId,
    /// The customer has a subscription that is not canceled.
    LiveSubscription,
    /// The customer belongs to an organization already.
    OrganizationMember,
    /// The provider's payment method was added already.
    ProviderPaymentMethod,
    /// The subscription's period has its standard invoice already.
    PeriodInvoiced,
    /// The document number was taken (or its predecessor is not issued yet).
    DocumentNumber,
    /// The invoice has a charge pending or succeeded already.
    InvoiceCharge,
    /// The ledger recorded a usage under this idempotency key already.
    UsageKey,
}

/// An append refused because it would break a claim another aggregate holds. It reaches the
/// caller inside `AggregateError::UnexpectedError`; the API downcasts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?} is claimed already")]
pub struct ClaimConflict {
    pub kind: ClaimKind,
}
