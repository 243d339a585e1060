//! Each merchant's prefixes for its series of document numbers: `INV`, `CAN` and `CN` unless
//! it chose its own (`billstream merchants create --invoice-prefix ACME …`). A prefix names
//! its series, so the numbering proof (`GET /v1/invoices/numbering`) lists a series per
//! prefix; prefixes are set before the merchant's first number and never renamed after, so a
//! series never splits in two.

use domain::invoice::DocumentType;
use domain::tenant::Tenant;
use projections::tables::merchants;
use sqlx::PgPool;

use crate::context::App;
use crate::error::AppError;
use crate::merchants::CreateMerchantError;

/// The longest prefix, in characters.
const MAX_PREFIX_CHARS: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPrefixes {
    pub invoice: String,
    pub cancellation: String,
    pub credit_note: String,
}

impl Default for NumberPrefixes {
    fn default() -> Self {
        NumberPrefixes {
            invoice: "INV".into(),
            cancellation: "CAN".into(),
            credit_note: "CN".into(),
        }
    }
}

impl NumberPrefixes {
    /// The prefix of `document_type`'s series.
    pub fn of(&self, document_type: DocumentType) -> &str {
        match document_type {
            DocumentType::Standard => &self.invoice,
            DocumentType::Cancellation => &self.cancellation,
            DocumentType::CreditNote => &self.credit_note,
        }
    }

    /// Up to 12 of `A`–`Z`, `0`–`9` and inner hyphens each, and three different ones: a
    /// number must say which series it belongs to.
    pub fn validate(&self) -> Result<(), String> {
        for (name, prefix) in [
            ("invoice", &self.invoice),
            ("cancellation", &self.cancellation),
            ("credit note", &self.credit_note),
        ] {
            let allowed = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-';
            if prefix.is_empty()
                || prefix.chars().count() > MAX_PREFIX_CHARS
                || !prefix.chars().all(allowed)
                || prefix.starts_with('-')
                || prefix.ends_with('-')
            {
                return Err(format!(
                    "the {name} prefix must be 1 to {MAX_PREFIX_CHARS} of A-Z, 0-9 and inner hyphens"
                ));
            }
        }
        if self.invoice == self.cancellation
            || self.invoice == self.credit_note
            || self.cancellation == self.credit_note
        {
            return Err("the three prefixes must differ".into());
        }
        Ok(())
    }
}

/// Gives the merchant its own prefixes; refused once any of its documents has a number.
pub async fn set_number_prefixes(
    pool: &PgPool,
    merchant_id: &str,
    prefixes: &NumberPrefixes,
) -> Result<(), CreateMerchantError> {
    prefixes.validate().map_err(CreateMerchantError::Invalid)?;
    let set = merchants::set_number_prefixes(
        pool,
        merchant_id,
        (
            &prefixes.invoice,
            &prefixes.cancellation,
            &prefixes.credit_note,
        ),
    )
    .await?;
    if !set {
        return Err(CreateMerchantError::Invalid(format!(
            "no merchant {merchant_id} without numbered documents: a series keeps its prefix"
        )));
    }
    Ok(())
}

impl App {
    /// The series (its prefix) the tenant numbers `document_type` in.
    pub(crate) async fn series_of(
        &self,
        tenant: &Tenant,
        document_type: DocumentType,
    ) -> Result<String, AppError> {
        let prefixes = match merchants::number_prefixes(&self.pool, &tenant.merchant_id).await? {
            Some((invoice, cancellation, credit_note)) => NumberPrefixes {
                invoice,
                cancellation,
                credit_note,
            },
            None => NumberPrefixes::default(),
        };
        Ok(prefixes.of(document_type).to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixes(invoice: &str, cancellation: &str, credit_note: &str) -> NumberPrefixes {
        NumberPrefixes {
            invoice: invoice.into(),
            cancellation: cancellation.into(),
            credit_note: credit_note.into(),
        }
    }

    #[test]
    fn the_defaults_and_a_merchants_own_are_valid() {
        assert_eq!(NumberPrefixes::default().validate(), Ok(()));
        assert_eq!(prefixes("ACME", "ACME-CAN", "ACME-CN").validate(), Ok(()));
        assert_eq!(prefixes("R2026", "S2026", "G").validate(), Ok(()));
    }

    #[test]
    fn bad_or_equal_prefixes_are_refused() {
        for bad in [
            prefixes("", "CAN", "CN"),
            prefixes("acme", "CAN", "CN"),
            prefixes("AC ME", "CAN", "CN"),
            prefixes("-ACME", "CAN", "CN"),
            prefixes("ACME-", "CAN", "CN"),
            prefixes("ABCDEFGHIJKLM", "CAN", "CN"),
            prefixes("INV", "INV", "CN"),
            prefixes("INV", "CAN", "CAN"),
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
