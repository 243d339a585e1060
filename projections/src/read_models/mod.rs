//! The read models, one file each, and the registry that names them for the service, the
//! status command and rebuilds.

pub mod billing_schedule;
pub mod credit_balances;
pub mod customer_list;
pub mod customer_uniqueness;
pub mod document_numbers;
pub mod invoice_list;
pub mod organization_list;
pub mod payment_list;
pub mod payment_method_list;
pub mod payment_totals;
pub mod plan_list;
pub mod portal_overview;
pub mod registry;
pub mod subscription_list;
pub mod top_up_list;
