//! Dodo Payments as a gateway. Dodo keeps the payment method (mandate) on a subscription: it is
//! added or replaced through a hosted link, charged on demand through the subscription, and
//! every outcome arrives by Standard-Webhooks-signed delivery.
//!
//! Dodo documents no idempotency key, so the gateway finds its own earlier work first: a charge
//! carries our payment id in its metadata (`billstream_payment_id`) and is looked for among the
//! subscription's most recent payments; a refund carries our refund id in its reason
//! (`billstream refund <refund_id>`), which the payment lists with its refunds. Two retries
//! racing each other can still both go through; sequential retries cannot.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;

use super::{
    Charge, ChargeRequest, ChargeStatus, CollectedCard, CollectedMethod, CustomerDetails, Delivery,
    EventMeaning, GatewayError, Interpreted, PaymentGateway, Refund, RefundRequest, SetupIntent,
    SetupIntentRequest,
};
use crate::dodo::DodoPayment;
use crate::dodo::{
    DodoCard, DodoClient, DodoRefund, NewRefund, PaymentMethodUpdate, RefundItem,
    SubscriptionCharge,
};
use crate::dodo_webhook::{event_types, DodoWebhookPayload};
use crate::standard_webhooks::{StandardWebhookSecret, WebhookHeaders};

/// The metadata key of a Dodo payment that names our payment.
const PAYMENT_METADATA: &str = "billstream_payment_id";
/// The metadata key of a Dodo refund that names our refund.
const REFUND_METADATA: &str = "billstream_refund_id";
/// A Dodo refund's reason is this followed by our refund id.
const REFUND_REASON_PREFIX: &str = "billstream refund ";

const CHARGE: &str = "charge the payment method";
const REFUND: &str = "refund the payment";
const LIST_METHODS: &str = "list the customer's payment methods";
const PAYMENT_LINK: &str = "create the payment link";

/// A merchant's Dodo account, serving one mode.
#[derive(Debug, Clone)]
pub struct DodoGateway {
    client: DodoClient,
    webhook_secret: Option<StandardWebhookSecret>,
    live: bool,
}

impl DodoGateway {
    /// `live`: whether the account (its API key and host) is Dodo's live mode.
    pub fn new(
        client: DodoClient,
        webhook_secret: Option<StandardWebhookSecret>,
        live: bool,
    ) -> Self {
        Self {
            client,
            webhook_secret,
            live,
        }
    }

    pub fn client(&self) -> &DodoClient {
        &self.client
    }

    /// The payment's line a partial refund names: its one product, or the product of the
    /// subscription it paid for.
    async fn refundable_item(&self, payment: &DodoPayment) -> Result<String, GatewayError> {
        match payment.product_cart.as_deref() {
            Some([item]) => return Ok(item.product_id.clone()),
            Some([_, _, ..]) => {
                return Err(GatewayError::Unsupported(
                    "Partially refunding a Dodo payment of several products",
                ))
            }
            Some([]) | None => {}
        }
        let subscription = payment
            .subscription_id
            .as_deref()
            .ok_or(GatewayError::Unsupported(
                "Partially refunding a Dodo payment of no product",
            ))?;
        self.client
            .retrieve_subscription(subscription)
            .await
            .map_err(|e| GatewayError::failed(REFUND, e))?
            .product_id
            .ok_or(GatewayError::Unsupported(
                "Partially refunding a Dodo payment of no product",
            ))
    }
}

/// A payment Dodo already has, as a charge: settled, failed, or on its way.
fn payment_outcome(payment: DodoPayment) -> Result<Charge, GatewayError> {
    let status = match payment.status.as_deref() {
        Some("succeeded") => ChargeStatus::Succeeded,
        Some("failed" | "cancelled") => {
            return Err(GatewayError::Declined {
                code: payment
                    .error_code
                    .unwrap_or_else(|| "payment_failed".to_owned()),
                message: payment
                    .error_message
                    .unwrap_or_else(|| "The payment failed.".to_owned()),
            })
        }
        _ => ChargeStatus::Pending,
    };
    Ok(Charge {
        provider_payment_id: payment.payment_id,
        status,
    })
}

fn refund_outcome(refund: DodoRefund) -> Result<Refund, GatewayError> {
    let status = match refund.status.as_str() {
        "succeeded" => ChargeStatus::Succeeded,
        "pending" | "review" => ChargeStatus::Pending,
        other => {
            return Err(GatewayError::failed(
                REFUND,
                format!("the refund {} is {other}", refund.refund_id),
            ))
        }
    };
    Ok(Refund {
        provider_refund_id: refund.refund_id,
        status,
    })
}

/// Dodo's card summary as ours: networks come upper-case (`VISA`) and expiries as text; a card
/// without a usable brand, last four digits or expiry is no card.
fn collected_card(card: &DodoCard) -> Option<CollectedCard> {
    let network = card.card_network.as_deref()?.trim().to_lowercase();
    let brand = match network.as_str() {
        "american express" | "american_express" | "americanexpress" => "amex".to_owned(),
        _ => network,
    };
    let exp_month: u32 = card.expiry_month.as_deref()?.trim().parse().ok()?;
    let exp_year: i32 = card.expiry_year.as_deref()?.trim().parse().ok()?;
    let exp_year = if (0..100).contains(&exp_year) {
        2000 + exp_year
    } else {
        exp_year
    };
    Some(CollectedCard {
        brand,
        last_four: card.last4_digits.clone()?,
        exp_month,
        exp_year,
    })
    .filter(|c| (1..=12).contains(&c.exp_month))
}

#[async_trait]
impl PaymentGateway for DodoGateway {
    fn name(&self) -> &'static str {
        "dodo"
    }

    fn serves_live(&self) -> Option<bool> {
        Some(self.live)
    }

    async fn create_customer(
        &self,
        _customer: &CustomerDetails<'_>,
        _idempotency_key: Option<&str>,
    ) -> Result<Option<String>, GatewayError> {
        // Dodo's customers come from its checkouts; billstream keeps none of its own there.
        Ok(None)
    }

    async fn create_setup_intent(
        &self,
        request: &SetupIntentRequest<'_>,
    ) -> Result<SetupIntent, GatewayError> {
        let subscription = request
            .provider_subscription
            .ok_or(GatewayError::NeedsSubscription)?;
        let update = PaymentMethodUpdate::New {
            return_url: request.return_url.map(str::to_owned),
        };
        let link = self
            .client
            .update_subscription_payment_method(subscription, &update)
            .await
            .map_err(|e| GatewayError::failed(PAYMENT_LINK, e))?;
        let url = link
            .payment_link
            .ok_or_else(|| GatewayError::failed(PAYMENT_LINK, "the answer had no link"))?;
        Ok(SetupIntent::HostedLink { url })
    }

    /// Charges the subscription's mandate (`request.payment_method` is not read). The charge
    /// is pending until Dodo's `payment.succeeded` / `payment.failed` webhook; a retry answers
    /// the earlier payment as it stands, declined when it failed.
    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<Charge, GatewayError> {
        let subscription = request
            .provider_subscription
            .ok_or(GatewayError::Unsupported(
                "Charging a Dodo customer without a Dodo subscription",
            ))?;
        let earlier = self
            .client
            .list_subscription_payments(subscription)
            .await
            .map_err(|e| GatewayError::failed(CHARGE, e))?
            .into_iter()
            .find(|p| {
                p.metadata.get(PAYMENT_METADATA).map(String::as_str) == Some(request.payment_id)
            });
        if let Some(payment) = earlier {
            return payment_outcome(payment);
        }
        let charge = SubscriptionCharge {
            product_price: request.amount_cents,
            product_currency: Some(request.currency),
            product_description: request.description,
            metadata: BTreeMap::from([(PAYMENT_METADATA, request.payment_id)]),
        };
        let created = self
            .client
            .create_subscription_charge(subscription, &charge)
            .await
            .map_err(|e| GatewayError::failed(CHARGE, e))?;
        Ok(Charge {
            provider_payment_id: created.payment_id,
            status: ChargeStatus::Pending,
        })
    }

    /// Dodo refunds a whole payment, or part of one of its products: a partial refund names
    /// the payment's one product (or its subscription's).
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<Refund, GatewayError> {
        let reason = format!("{REFUND_REASON_PREFIX}{}", request.refund_id);
        let payment = self
            .client
            .retrieve_payment(request.provider_payment_id)
            .await
            .map_err(|e| GatewayError::failed(REFUND, e))?;
        let earlier = payment
            .refunds
            .iter()
            .flatten()
            .find(|r| r.reason.as_deref() == Some(reason.as_str()));
        if let Some(refund) = earlier {
            return refund_outcome(refund.clone());
        }
        if let Some(currency) = payment.currency.as_deref() {
            if !currency.eq_ignore_ascii_case(request.currency) {
                return Err(GatewayError::failed(
                    REFUND,
                    format!("the payment is in {currency}, not {}", request.currency),
                ));
            }
        }
        let total = payment
            .total_amount
            .ok_or_else(|| GatewayError::failed(REFUND, "the payment has no amount"))?;
        if !(1..=total).contains(&request.amount_cents) {
            return Err(GatewayError::failed(
                REFUND,
                format!(
                    "{} is not an amount to refund of a payment of {total}",
                    request.amount_cents
                ),
            ));
        }
        let item_id = if request.amount_cents == total {
            None
        } else {
            Some(self.refundable_item(&payment).await?)
        };
        let refund = NewRefund {
            payment_id: request.provider_payment_id,
            items: item_id.as_deref().map(|item_id| {
                vec![RefundItem {
                    item_id,
                    amount: Some(request.amount_cents),
                }]
            }),
            reason: Some(&reason),
            metadata: BTreeMap::from([(REFUND_METADATA, request.refund_id)]),
        };
        let refund = self
            .client
            .create_refund(&refund)
            .await
            .map_err(|e| GatewayError::failed(REFUND, e))?;
        refund_outcome(refund)
    }

    /// Dodo describes a method only in the list of its customer's methods; one that is not
    /// there is still the mandate the subscription is charged to, without a card.
    async fn describe_payment_method(
        &self,
        reference: &str,
        provider_customer: Option<&str>,
    ) -> Result<CollectedMethod, GatewayError> {
        let customer = provider_customer
            .ok_or_else(|| GatewayError::failed(LIST_METHODS, "no Dodo customer"))?;
        let method = self
            .client
            .list_customer_payment_methods(customer)
            .await
            .map_err(|e| GatewayError::failed(LIST_METHODS, e))?
            .into_iter()
            .find(|m| m.payment_method_id == reference);
        Ok(CollectedMethod {
            reference: reference.to_owned(),
            payment_type: method
                .as_ref()
                .map_or_else(|| "mandate".to_owned(), |m| m.payment_method.clone()),
            card: method
                .as_ref()
                .and_then(|m| m.card.as_ref())
                .and_then(collected_card),
        })
    }

    /// Dodo's deliveries do not say their mode: [`Delivery::livemode`] is `None`, and the
    /// account's mode ([`PaymentGateway::serves_live`]) is the delivery's.
    fn verify_delivery(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Delivery, GatewayError> {
        let secret = self
            .webhook_secret
            .as_ref()
            .ok_or(GatewayError::NotConfigured("Dodo"))?;
        let verified = secret.verify(&WebhookHeaders::from_header_map(headers), body, now)?;
        Ok(Delivery {
            id: verified.id,
            livemode: None,
        })
    }

    fn interpret(&self, body: &[u8]) -> Result<Interpreted, GatewayError> {
        let payload =
            DodoWebhookPayload::parse(body).map_err(|_| GatewayError::invalid_payload())?;
        let meaning = match payload.event_type.as_str() {
            event_types::SUBSCRIPTION_ACTIVE | event_types::SUBSCRIPTION_UPDATED => {
                let subscription = payload
                    .subscription()
                    .map_err(|_| GatewayError::invalid_payload())?;
                EventMeaning::SubscriptionPaymentMethod {
                    provider_subscription: subscription.subscription_id,
                    provider_customer: subscription.customer.customer_id,
                    payment_method: subscription.payment_method_id,
                    metadata: subscription.metadata,
                }
            }
            event_types::PAYMENT_SUCCEEDED | event_types::PAYMENT_FAILED => {
                // Only a subscription's payment is billstream's to record; one that does not
                // read as one (a one-off payment, with other fields) is not.
                match payload.payment().ok().and_then(|p| {
                    let subscription = p.subscription_id.clone()?;
                    Some((p, subscription))
                }) {
                    None => EventMeaning::Other,
                    Some((payment, provider_subscription)) => EventMeaning::SubscriptionCharged {
                        provider_subscription,
                        provider_payment_id: payment.payment_id,
                        amount_cents: payment.total_amount,
                        failure: (payload.event_type == event_types::PAYMENT_FAILED).then(|| {
                            (
                                payment
                                    .error_code
                                    .unwrap_or_else(|| "payment_failed".to_owned()),
                                payment
                                    .error_message
                                    .unwrap_or_else(|| "The payment failed.".to_owned()),
                            )
                        }),
                    },
                }
            }
            _ => EventMeaning::Other,
        };
        Ok(Interpreted {
            event_type: payload.event_type,
            meaning,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(network: &str, month: &str, year: &str) -> DodoCard {
        DodoCard {
            card_network: Some(network.into()),
            last4_digits: Some("4242".into()),
            expiry_month: Some(month.into()),
            expiry_year: Some(year.into()),
            ..DodoCard::default()
        }
    }

    #[test]
    fn a_dodo_card_is_ours_with_a_lowercase_brand_and_a_four_digit_year() {
        assert_eq!(
            collected_card(&card("VISA", "03", "30")),
            Some(CollectedCard {
                brand: "visa".into(),
                last_four: "4242".into(),
                exp_month: 3,
                exp_year: 2030,
            })
        );
        assert_eq!(
            collected_card(&card("American Express", "12", "2031")).map(|c| c.brand),
            Some("amex".into())
        );
    }

    #[test]
    fn a_dodo_card_without_a_usable_expiry_is_no_card() {
        assert_eq!(collected_card(&card("VISA", "13", "2030")), None);
        assert_eq!(collected_card(&card("VISA", "xx", "2030")), None);
        assert_eq!(
            collected_card(&DodoCard {
                expiry_year: None,
                ..card("VISA", "01", "2030")
            }),
            None
        );
    }
}
