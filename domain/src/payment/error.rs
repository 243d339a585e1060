/// Every rule the Payment aggregate protects, one variant each. Messages are the API's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// Never initiated, or another tenant's: the two must look the same.
    #[error("Payment not found")]
    NotFound,
    #[error("Payment already exists")]
    AlreadyExists,
    #[error("Payment amount must be between 1 and 1000000000000 cents")]
    InvalidAmount,
    #[error("A refund needs the payment it refunds")]
    RefundWithoutPayment,
    #[error("A charge refunds no payment")]
    ChargeRefundsNothing,
    /// A top-up's charge is of what the purchase costs, and is a charge.
    #[error("A top-up's charge must be of what the purchase costs")]
    TopUpAmountMismatch,
    /// The provider already gave the other answer: one of the two reports is wrong, and
    /// the first one stands.
    #[error("Payment is already settled")]
    AlreadySettled,
}
