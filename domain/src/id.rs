//! Prefixed identifiers (`cust_…`, `pm_…`, `sub_…`, `plan_…`, `price_…`, `org_…`, `inv_…`,
//! `pay_…`). New ids are a UUIDv7 in hex, so ids sort in creation order and keyset pagination
//! by id lists oldest first.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id")]
pub struct InvalidId {
    pub kind: &'static str,
}

/// The longest id we accept; anything longer is certainly not ours.
const MAX_ID_LEN: usize = 64;

/// True when `value` is `prefix` followed by 1 to 64 ASCII letters, digits or underscores.
fn is_valid(prefix: &str, value: &str) -> bool {
    value.len() <= MAX_ID_LEN
        && value.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

fn generate(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

/// A UUIDv7 id of `unix_millis` whose other bits are `entropy`: the same arguments make the
/// same id, and it still sorts by its time among generated ones.
fn derive(prefix: &str, unix_millis: u64, entropy: &[u8; 10]) -> String {
    let uuid = uuid::Builder::from_unix_timestamp_millis(unix_millis, entropy).into_uuid();
    format!("{prefix}{}", uuid.simple())
}

/// What every id type offers, so one parser serves them all.
pub trait PrefixedId: Sized {
    const PREFIX: &'static str;
    /// The kind of object it names, in words: `customer`, `payment method`, …
    const KIND: &'static str;
    fn parse(value: &str) -> Result<Self, InvalidId>;
    fn as_str(&self) -> &str;
    /// A new id, unlike any other.
    fn generate() -> Self;
    /// The id of `unix_millis` and `entropy`, the same each time: for what a flow makes, so
    /// that the flow run again makes the same thing.
    fn derived(unix_millis: u64, entropy: &[u8; 10]) -> Self;
}

/// Defines an id type: `$prefix` plus plain characters, made by `generate` or checked by
/// `parse`, and stored as the bare string.
macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn generate() -> Self {
                Self(generate(Self::PREFIX))
            }

            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                if is_valid(Self::PREFIX, value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(InvalidId { kind: $kind })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;

            fn try_from(value: String) -> Result<Self, InvalidId> {
                $name::parse(&value)
            }
        }

        impl PrefixedId for $name {
            const PREFIX: &'static str = $prefix;
            const KIND: &'static str = $kind;

            fn parse(value: &str) -> Result<Self, InvalidId> {
                $name::parse(value)
            }

            fn as_str(&self) -> &str {
                &self.0
            }

            fn generate() -> Self {
                $name::generate()
            }

            fn derived(unix_millis: u64, entropy: &[u8; 10]) -> Self {
                Self(derive(Self::PREFIX, unix_millis, entropy))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(CustomerId, "cust_", "customer");
prefixed_id!(PaymentMethodId, "pm_", "payment method");
prefixed_id!(SubscriptionId, "sub_", "subscription");
prefixed_id!(PlanId, "plan_", "plan");
prefixed_id!(
    /// A plan's price: the seed gives every plan one, and subscriptions report it beside the
    /// plan's own id.
    PriceId,
    "price_",
    "price"
);
prefixed_id!(OrganizationId, "org_", "organization");
prefixed_id!(
    /// An invoice, and also its adjustment documents: a cancellation or a credit note is an
    /// invoice of its own, with its own number.
    InvoiceId,
    "inv_",
    "invoice"
);
prefixed_id!(
    /// A charge or a refund, and the idempotency key the provider is asked with.
    PaymentId,
    "pay_",
    "payment"
);
prefixed_id!(
    /// A grant of credits in a customer's ledger for a feature.
    CreditGrantId,
    "cg_",
    "credit grant"
);
prefixed_id!(
    /// One recorded usage of a feature.
    UsageId,
    "usg_",
    "usage"
);
prefixed_id!(
    /// Credits a merchant offers its customers to buy.
    TopUpId,
    "tu_",
    "top-up"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_are_the_same_for_the_same_arguments_and_sort_by_time() {
        let earlier = <CustomerId as PrefixedId>::derived(1_700_000_000_000, &[7; 10]);
        let again = <CustomerId as PrefixedId>::derived(1_700_000_000_000, &[7; 10]);
        let other = <CustomerId as PrefixedId>::derived(1_700_000_000_000, &[8; 10]);
        let later = <CustomerId as PrefixedId>::derived(1_700_000_000_001, &[0; 10]);
        assert_eq!(earlier, again);
        assert_ne!(earlier, other);
        assert!(earlier < later && other < later);
        assert_eq!(CustomerId::parse(earlier.as_str()), Ok(earlier.clone()));
    }

    #[test]
    fn generated_customer_ids_parse_back() {
        let id = CustomerId::generate();
        assert_eq!(CustomerId::parse(id.as_str()), Ok(id));
    }

    #[test]
    fn customer_ids_need_their_prefix_and_plain_characters() {
        assert!(CustomerId::parse("cust_stable_123").is_ok());
        assert!(CustomerId::parse("pm_123").is_err());
        assert!(CustomerId::parse("cust_").is_err());
        assert!(CustomerId::parse("cust_a'b").is_err());
        assert!(CustomerId::parse(&format!("cust_{}", "a".repeat(80))).is_err());
    }

    #[test]
    fn every_kind_of_id_parses_back_and_refuses_the_others_prefix() {
        let pm = PaymentMethodId::generate();
        assert_eq!(PaymentMethodId::parse(pm.as_str()), Ok(pm));
        let sub = SubscriptionId::generate();
        assert_eq!(SubscriptionId::parse(sub.as_str()), Ok(sub));
        let plan = PlanId::generate();
        assert_eq!(PlanId::parse(plan.as_str()), Ok(plan));
        let price = PriceId::generate();
        assert_eq!(PriceId::parse(price.as_str()), Ok(price));
        let org = OrganizationId::generate();
        assert_eq!(OrganizationId::parse(org.as_str()), Ok(org));
        let inv = InvoiceId::generate();
        assert_eq!(InvoiceId::parse(inv.as_str()), Ok(inv));
        let pay = PaymentId::generate();
        assert_eq!(PaymentId::parse(pay.as_str()), Ok(pay));

        assert!(PaymentMethodId::parse("cust_1").is_err());
        assert!(SubscriptionId::parse("pm_1").is_err());
        assert!(PlanId::parse("price_1").is_err());
        assert!(PriceId::parse("plan_1").is_err());
        assert!(OrganizationId::parse("org_").is_err());
        assert!(InvoiceId::parse("pay_1").is_err());
        assert!(PaymentId::parse("inv_1").is_err());
        assert_eq!(
            PaymentId::parse("nope").unwrap_err().to_string(),
            "invalid payment id"
        );
    }

    #[test]
    fn an_invalid_id_names_its_kind() {
        let error = PaymentMethodId::parse("nope").unwrap_err();
        assert_eq!(error.to_string(), "invalid payment method id");
    }

    #[test]
    fn ids_are_stored_as_bare_strings() {
        let id = SubscriptionId::parse("sub_1").unwrap();
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            serde_json::json!("sub_1")
        );
    }
}
