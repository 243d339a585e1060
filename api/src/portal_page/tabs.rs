//! The four tabs' contents, each read through the same use-cases as the JSON portal API
//! answers from, and rendered by its template. The page
//! renders all four; `GET /portal/tabs/{tab}` renders one again when the page refreshes it.

use app::{App, Principal};
use askama::Template;
use chrono::{DateTime, Utc};
use domain::id::CustomerId;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;
use crate::portal_page::view::{card_brand, document_type, Badge, Money, Stamp};

/// How many invoices and payments the page lists: a customer with more reads the rest through
/// the paged API (`GET /v1/customers/portal/invoices`), which the page says.
const LISTED: i64 = 100;

/// One of the page's tabs, by the name its URL and its element ids use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Methods,
    Invoices,
    Payments,
    Credits,
}

impl Tab {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "methods" => Some(Self::Methods),
            "invoices" => Some(Self::Invoices),
            "payments" => Some(Self::Payments),
            "credits" => Some(Self::Credits),
            _ => None,
        }
    }

    /// The tab's contents as HTML.
    pub async fn render(self, app: &App, principal: &Principal) -> Result<String, ApiError> {
        let customer = app.portal_customer(principal, None).await?;
        self.render_for(app, principal, &customer.id).await
    }

    /// The tab's contents for the session's customer `customer`, found live already (the
    /// page finds it once for its four tabs).
    pub async fn render_for(
        self,
        app: &App,
        principal: &Principal,
        customer: &CustomerId,
    ) -> Result<String, ApiError> {
        let html = match self {
            Self::Methods => methods(app, principal).await?.render(),
            Self::Invoices => invoices(app, principal, customer).await?.render(),
            Self::Payments => payments(app, principal, customer).await?.render(),
            Self::Credits => credits(app, principal, customer).await?.render(),
        };
        html.map_err(|e| ApiError::internal("Internal server error", e))
    }
}

#[derive(Template)]
#[template(path = "portal/methods.html")]
pub struct MethodsTab {
    pub methods: Vec<MethodRow>,
    pub has_subscription: bool,
}

pub struct MethodRow {
    pub id: String,
    pub brand: String,
    pub last_four: String,
    pub expiry: Option<String>,
    /// The card the subscription is charged to: the seed's "default".
    pub is_default: bool,
}

async fn methods(app: &App, principal: &Principal) -> Result<MethodsTab, ApiError> {
    let overview = app.portal_account(principal, None).await?;
    let has_subscription = overview
        .subscription
        .as_ref()
        .is_some_and(|s| s.status.as_str() != "canceled");
    let methods = overview
        .payment_methods
        .into_iter()
        .map(|m| MethodRow {
            brand: card_brand(m.card_brand.as_deref().unwrap_or(&m.payment_type)),
            last_four: m.card_last_four.unwrap_or_default(),
            expiry: m
                .card_expiry_month
                .zip(m.card_expiry_year)
                .map(|(month, year)| format!("{month:02}/{year}")),
            is_default: m.linked_to_subscription,
            id: m.id,
        })
        .collect();
    Ok(MethodsTab {
        methods,
        has_subscription,
    })
}

#[derive(Template)]
#[template(path = "portal/invoices.html")]
pub struct InvoicesTab {
    pub invoices: Vec<InvoiceRow>,
    pub more: bool,
}

pub struct InvoiceRow {
    pub number: String,
    pub kind: String,
    pub badge: Badge,
    pub issued: Option<Stamp>,
    pub paid: Option<Stamp>,
    pub total: Money,
    /// Same-origin path of the PDF: the page fetches it with the session as Bearer.
    pub pdf_path: Option<String>,
}

/// The portal API's invoice item (`app::portal_billing::portal_invoice`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortalInvoice {
    id: String,
    number: Option<String>,
    status: String,
    document_type: String,
    currency: String,
    total_amount_cents: i64,
    issue_date: Option<DateTime<Utc>>,
    paid_date: Option<DateTime<Utc>>,
    pdf_url: Option<String>,
}

async fn invoices(
    app: &App,
    principal: &Principal,
    customer: &CustomerId,
) -> Result<InvoicesTab, ApiError> {
    let (items, more) = app
        .customer_invoices(&principal.tenant, customer.as_str(), None, LISTED)
        .await?;
    let invoices = typed::<PortalInvoice>(items)?
        .into_iter()
        .map(|invoice| InvoiceRow {
            number: invoice.number.unwrap_or_else(|| "Draft".into()),
            kind: document_type(&invoice.document_type),
            badge: Badge::invoice(&invoice.status),
            issued: invoice.issue_date.map(Stamp::date),
            paid: invoice.paid_date.map(Stamp::date),
            total: Money::new(invoice.total_amount_cents, &invoice.currency),
            pdf_path: invoice
                .pdf_url
                .map(|_| format!("/v1/invoices/{}/pdf", invoice.id)),
        })
        .collect();
    Ok(InvoicesTab { invoices, more })
}

#[derive(Template)]
#[template(path = "portal/payments.html")]
pub struct PaymentsTab {
    pub payments: Vec<PaymentRow>,
    pub more: bool,
}

pub struct PaymentRow {
    pub amount: Money,
    pub at: Stamp,
    pub badge: Badge,
    pub refund: bool,
    pub error_message: Option<String>,
}

/// The portal API's payment item (`app::portal_billing::portal_payment`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortalPayment {
    #[serde(rename = "type")]
    kind: String,
    amount_cents: i64,
    currency: String,
    status: String,
    error_message: Option<String>,
    created_at: DateTime<Utc>,
}

async fn payments(
    app: &App,
    principal: &Principal,
    customer: &CustomerId,
) -> Result<PaymentsTab, ApiError> {
    let (items, more) = app
        .customer_payments(&principal.tenant, customer.as_str(), None, LISTED)
        .await?;
    let payments = typed::<PortalPayment>(items)?
        .into_iter()
        .map(|payment| PaymentRow {
            amount: Money::new(payment.amount_cents, &payment.currency),
            at: Stamp::date_time(payment.created_at),
            badge: Badge::payment(&payment.status),
            refund: payment.kind == "refund",
            error_message: payment.error_message,
        })
        .collect();
    Ok(PaymentsTab { payments, more })
}

#[derive(Template)]
#[template(path = "portal/credits.html")]
pub struct CreditsTab {
    pub balances: Vec<BalanceRow>,
    pub top_ups: Vec<TopUpRow>,
}

pub struct BalanceRow {
    pub slug: String,
    pub name: String,
    pub remaining: i64,
    pub total: i64,
    pub used: i64,
    pub next_expiry: Option<Stamp>,
    pub grants: Vec<GrantRow>,
}

pub struct GrantRow {
    pub source: String,
    pub remaining: i64,
    pub initial: i64,
    pub expires: Option<Stamp>,
}

pub struct TopUpRow {
    pub id: String,
    pub name: String,
    pub credits_per_unit: i64,
    pub price: Money,
    pub max_quantity: i64,
}

/// How many of its latest ledger entries the credits tab reads: none, it shows balances.
const NO_TRANSACTIONS: i64 = 0;

async fn credits(
    app: &App,
    principal: &Principal,
    customer: &CustomerId,
) -> Result<CreditsTab, ApiError> {
    // The same use-cases as `GET /v1/customers/portal/credits`: the customer's balances with
    // their grants, and the top-ups offered on its plan.
    let summary = app
        .credit_summary(principal, customer.as_str(), NO_TRANSACTIONS)
        .await?;
    let offered = app.offered_top_ups(&principal.tenant, customer).await?;
    let now = summary.now;
    let balances = summary
        .balances
        .into_iter()
        .map(|balance| BalanceRow {
            grants: summary
                .grants
                .iter()
                .filter(|grant| {
                    grant.feature_slug == balance.feature_slug && grant.status_at(now) == "active"
                })
                .map(|grant| GrantRow {
                    source: grant_source(&grant.source),
                    remaining: grant.remaining_amount,
                    initial: grant.initial_amount,
                    expires: grant.expires_at.map(Stamp::date),
                })
                .collect(),
            slug: balance.feature_slug,
            name: balance.name,
            remaining: balance.remaining,
            total: balance.total,
            used: balance.used,
            next_expiry: balance.next_expiry.map(Stamp::date),
        })
        .collect();
    let top_ups = offered
        .into_iter()
        .map(|top_up| TopUpRow {
            price: Money::new(top_up.unit_amount_cents, &top_up.currency),
            max_quantity: top_up.max_quantity,
            id: top_up.id.to_string(),
            name: top_up.name,
            credits_per_unit: top_up.credits_per_unit,
        })
        .collect();
    Ok(CreditsTab { balances, top_ups })
}

fn grant_source(source: &str) -> String {
    match source {
        "subscription" => "Plan allowance".into(),
        "topup" => "Top-up".into(),
        "promotion" => "Promotion".into(),
        "refund" => "Refund".into(),
        _ => "Granted".into(),
    }
}

/// The portal API's JSON items as the page's types: the page reads what the API answers.
fn typed<T: DeserializeOwned>(items: Vec<serde_json::Value>) -> Result<Vec<T>, ApiError> {
    items.into_iter().map(typed_one).collect()
}

fn typed_one<T: DeserializeOwned>(item: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(item).map_err(|e| ApiError::internal("Internal server error", e))
}
