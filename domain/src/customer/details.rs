use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::customer::CustomerError;

/// The customer's fields other than the email: each optional, each replaced on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DetailField {
    Name,
    ExternalCustomerId,
    BillingAddressLine1,
    BillingAddressLine2,
    BillingCity,
    BillingPostalCode,
    BillingCountry,
    TaxId,
}

/// Longest value any detail may hold; generous for addresses, small enough to index.
const MAX_DETAIL_LEN: usize = 500;

impl DetailField {
    pub const ALL: [DetailField; 8] = [
        DetailField::Name,
        DetailField::ExternalCustomerId,
        DetailField::BillingAddressLine1,
        DetailField::BillingAddressLine2,
        DetailField::BillingCity,
        DetailField::BillingPostalCode,
        DetailField::BillingCountry,
        DetailField::TaxId,
    ];

    /// The field's name in the API's JSON.
    pub fn json_name(self) -> &'static str {
        match self {
            DetailField::Name => "name",
            DetailField::ExternalCustomerId => "externalCustomerId",
            DetailField::BillingAddressLine1 => "billingAddressLine1",
            DetailField::BillingAddressLine2 => "billingAddressLine2",
            DetailField::BillingCity => "billingCity",
            DetailField::BillingPostalCode => "billingPostalCode",
            DetailField::BillingCountry => "billingCountry",
            DetailField::TaxId => "taxId",
        }
    }

    /// Checks and normalizes a value given for this field. A blank string clears the field,
    /// as Stripe's API does; a country is a two-letter ISO 3166-1 code, kept uppercase.
    pub fn parse_value(self, raw: Option<&str>) -> Result<Option<String>, CustomerError> {
        let Some(value) = raw.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let invalid = |reason: &str| CustomerError::InvalidField {
            field: self.json_name(),
            reason: reason.to_owned(),
        };
        if value.chars().count() > MAX_DETAIL_LEN {
            return Err(invalid("must be at most 500 characters"));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters"));
        }
        if self == DetailField::BillingCountry {
            if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(invalid("must be a two-letter ISO 3166-1 country code"));
            }
            return Ok(Some(value.to_ascii_uppercase()));
        }
        Ok(Some(value.to_owned()))
    }
}

/// New values for some details; `None` clears a field. Only fields present are touched.
pub type DetailChanges = BTreeMap<DetailField, Option<String>>;

/// The current value of every detail. Empty fields are left out of stored events: most
/// customers have few details, and every byte of an event is written to the log forever.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address_line1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address_line2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_id: Option<String>,
}

impl CustomerDetails {
    fn slot(&mut self, field: DetailField) -> &mut Option<String> {
        match field {
            DetailField::Name => &mut self.name,
            DetailField::ExternalCustomerId => &mut self.external_customer_id,
            DetailField::BillingAddressLine1 => &mut self.billing_address_line1,
            DetailField::BillingAddressLine2 => &mut self.billing_address_line2,
            DetailField::BillingCity => &mut self.billing_city,
            DetailField::BillingPostalCode => &mut self.billing_postal_code,
            DetailField::BillingCountry => &mut self.billing_country,
            DetailField::TaxId => &mut self.tax_id,
        }
    }

    pub fn get(&self, field: DetailField) -> Option<&str> {
        match field {
            DetailField::Name => self.name.as_deref(),
            DetailField::ExternalCustomerId => self.external_customer_id.as_deref(),
            DetailField::BillingAddressLine1 => self.billing_address_line1.as_deref(),
            DetailField::BillingAddressLine2 => self.billing_address_line2.as_deref(),
            DetailField::BillingCity => self.billing_city.as_deref(),
            DetailField::BillingPostalCode => self.billing_postal_code.as_deref(),
            DetailField::BillingCountry => self.billing_country.as_deref(),
            DetailField::TaxId => self.tax_id.as_deref(),
        }
    }

    pub fn apply(&mut self, changes: &DetailChanges) {
        for (field, value) in changes {
            *self.slot(*field) = value.clone();
        }
    }

    /// Validates raw values and builds details from them; fields not given stay empty.
    pub fn parse(raw: &BTreeMap<DetailField, Option<String>>) -> Result<Self, CustomerError> {
        let mut details = CustomerDetails::default();
        details.apply(&parse_changes(raw)?);
        Ok(details)
    }
}

/// Validates every raw value of a partial update.
pub(crate) fn parse_changes(
    raw: &BTreeMap<DetailField, Option<String>>,
) -> Result<DetailChanges, CustomerError> {
    raw.iter()
        .map(|(field, value)| Ok((*field, field.parse_value(value.as_deref())?)))
        .collect()
}
