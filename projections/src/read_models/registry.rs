//! Every read model, once: its name (as `billstream projections` shows it), its tables, how it
//! is fed and how it is rebuilt. The event store's inline writes, `projections status` and
//! `projections rebuild` all read this list, so a new read model is registered here and
//! nowhere else.

use super::credit_balances::{self, CreditBalancesProjection};
use super::customer_list::{self, CustomerListProjection};
use super::document_numbers::{self, DocumentNumbersProjection};
use super::invoice_list::{self, InvoiceListProjection};
use super::organization_list::{self, OrganizationListProjection};
use super::payment_list::{self, PaymentListProjection};
use super::payment_method_list::{self, PaymentMethodListProjection};
use super::payment_totals::{self, PaymentTotalsProjection};
use super::plan_list::{self, PlanListProjection};
use super::portal_overview;
use super::subscription_list::{self, SubscriptionListProjection};
use super::top_up_list::{self, TopUpListProjection};
use crate::event_store::append::InlineProjection;

/// How a read model is fed.
#[derive(Clone, Copy)]
pub enum Feeding {
    /// In the append statement itself: it commits with the events.
    Inline(&'static (dyn InlineProjection + 'static)),
    /// After the commit, by a log consumer from its checkpoint (`catch_up/`).
    CatchUp,
}

/// How a read model is rebuilt from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildMethod {
    /// Into a fresh table, swapped in at the end (large tables: reads never wait).
    FreshTable,
    /// In one transaction over its own tables, replaying one aggregate type's log.
    InPlace { aggregate_type: &'static str },
    /// Into a fresh table with a checkpoint of its own, handed over at the end.
    FreshCatchUp,
}

pub struct ReadModel {
    pub name: &'static str,
    /// Its tables, the first the one whose rows `status` counts.
    pub tables: &'static [&'static str],
    pub feeding: Feeding,
    pub rebuild: RebuildMethod,
}

impl ReadModel {
    /// `inline` or `catch-up`, as `projections status` shows it.
    pub fn mode(&self) -> &'static str {
        match self.feeding {
            Feeding::Inline(_) => "inline",
            Feeding::CatchUp => "catch-up",
        }
    }
}

/// The live `customer_list`, as appends write it.
static CUSTOMER_LIST: CustomerListProjection = CustomerListProjection::live();

/// Every read model, in the order `projections rebuild` takes them when none is named.
pub static READ_MODELS: &[ReadModel] = &[
    ReadModel {
        name: customer_list::TABLE,
        tables: &[customer_list::TABLE],
        feeding: Feeding::Inline(&CUSTOMER_LIST),
        rebuild: RebuildMethod::FreshTable,
    },
    ReadModel {
        name: portal_overview::TABLE,
        tables: &[portal_overview::TABLE],
        feeding: Feeding::CatchUp,
        rebuild: RebuildMethod::FreshCatchUp,
    },
    ReadModel {
        name: plan_list::TABLE,
        tables: &[plan_list::TABLE],
        feeding: Feeding::Inline(&PlanListProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "Plan",
        },
    },
    ReadModel {
        name: subscription_list::TABLE,
        tables: &[subscription_list::TABLE],
        feeding: Feeding::Inline(&SubscriptionListProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "Subscription",
        },
    },
    ReadModel {
        name: payment_method_list::TABLE,
        tables: &[payment_method_list::TABLE],
        feeding: Feeding::Inline(&PaymentMethodListProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "PaymentMethod",
        },
    },
    ReadModel {
        name: organization_list::TABLE,
        tables: &[organization_list::TABLE, organization_list::MEMBERS],
        feeding: Feeding::Inline(&OrganizationListProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "Organization",
        },
    },
    ReadModel {
        name: invoice_list::TABLE,
        tables: &[invoice_list::TABLE],
        feeding: Feeding::Inline(&InvoiceListProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "Invoice",
        },
    },
    ReadModel {
        name: document_numbers::TABLE,
        tables: &[document_numbers::TABLE],
        feeding: Feeding::Inline(&DocumentNumbersProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "Invoice",
        },
    },
    ReadModel {
        name: payment_list::TABLE,
        tables: &[payment_list::TABLE],
        feeding: Feeding::Inline(&PaymentListProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "Payment",
        },
    },
    ReadModel {
        name: payment_totals::TABLE,
        tables: &[payment_totals::TABLE],
        feeding: Feeding::Inline(&PaymentTotalsProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "Payment",
        },
    },
    ReadModel {
        name: credit_balances::NAME,
        tables: &[credit_balances::TABLE, credit_balances::TRANSACTIONS],
        feeding: Feeding::Inline(&CreditBalancesProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "CreditLedger",
        },
    },
    ReadModel {
        name: top_up_list::TABLE,
        tables: &[top_up_list::TABLE],
        feeding: Feeding::Inline(&TopUpListProjection),
        rebuild: RebuildMethod::InPlace {
            aggregate_type: "TopUp",
        },
    },
];

/// The read model called `name`.
pub fn find(name: &str) -> Option<&'static ReadModel> {
    READ_MODELS.iter().find(|model| model.name == name)
}

/// Every read model's name, in registry order.
pub fn names() -> Vec<&'static str> {
    READ_MODELS.iter().map(|model| model.name).collect()
}

/// The aggregate types whose appends may share one statement (`combined_appends.rs`): every
/// inline row their events write belongs to one aggregate (a ledger's grants and entries), so
/// the appends of two of them never write the same row. `Payment` could not be named, since
/// `payment_totals` sums a customer's payments in one row.
pub const COMBINED_APPENDS: &[&str] = &[<domain::credit::CreditLedger as cqrs_es::Aggregate>::TYPE];

/// The projections every append writes in its statement.
pub fn inline_projections() -> Vec<&'static dyn InlineProjection> {
    READ_MODELS
        .iter()
        .filter_map(|model| match model.feeding {
            Feeding::Inline(projection) => Some(projection),
            Feeding::CatchUp => None,
        })
        .collect()
}
