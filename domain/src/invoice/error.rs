/// Every rule the Invoice aggregate protects, one variant each. Messages are the API's. A line
/// is named by its position counted from 1, as a person reads the list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// Never drafted, or another tenant's: the two must look the same.
    #[error("Invoice not found")]
    NotFound,
    #[error("Invoice already exists")]
    AlreadyExists,
    #[error("Currency must be a three-letter ISO 4217 code")]
    InvalidCurrency,
    #[error("An invoice needs at least one line")]
    NoLines,
    #[error("Line {line}: description is required")]
    DescriptionRequired { line: usize },
    #[error("Line {line}: description must be at most 500 characters")]
    DescriptionTooLong { line: usize },
    #[error("Line {line}: quantity must be between 1 and 1000000")]
    InvalidQuantity { line: usize },
    #[error("Line {line}: unit amount must be between 0 and 10000000000 cents")]
    InvalidUnitAmount { line: usize },
    #[error("Line {line}: amount must be at most 1000000000000 cents")]
    LineAmountTooLarge { line: usize },
    #[error("Line {line}: period must not end before it starts")]
    LinePeriodEndsBeforeStart { line: usize },
    #[error("Invoice total must be at most 1000000000000 cents")]
    TotalTooLarge,
    #[error("Invoice period must not end before it starts")]
    PeriodEndsBeforeStart,
    #[error("Invoice number is required")]
    NumberRequired,
    #[error("Due date must not be before the issue date")]
    DueDateBeforeIssueDate,
    #[error("Invoice is still a draft")]
    StillDraft,
    #[error("Invoice is already issued")]
    AlreadyIssued,
    /// The API answers 409.
    #[error("Invoice is already paid")]
    InvoiceAlreadyPaid,
    #[error("Invoice is void")]
    Voided,
    #[error("Invoice is already void")]
    AlreadyVoid,
    #[error("Invoice is uncollectible")]
    Uncollectible,
    #[error("Invoice is already uncollectible")]
    AlreadyUncollectible,
    /// Money was received for it: only a credit note can give it back.
    #[error("A paid invoice cannot be voided; issue a credit note")]
    PaidCannotBeVoided,
    #[error("A partly paid invoice cannot be voided; issue a credit note")]
    PartlyPaidCannotBeVoided,
    /// The caller's mistake: an issued invoice has a number, and its voiding needs a document
    /// that reverses it.
    #[error("Voiding an issued invoice needs its cancellation document")]
    CancellationRequired,
    /// The caller's mistake: a draft has no number, so there is nothing to cancel.
    #[error("A draft is voided without a cancellation document")]
    DraftNeedsNoCancellation,
    /// Cancellations and credit notes are final: they are corrected by nothing.
    #[error("Only a standard invoice can be paid, voided, credited or written off")]
    NotStandard,
    #[error("Payment amount must be between 1 and 1000000000000 cents")]
    InvalidPaymentAmount,
    #[error("Credit note amount must be positive")]
    InvalidCreditAmount,
    #[error("Credit note amount exceeds what is left to credit")]
    CreditExceedsRemaining,
    #[error("Invoice has nothing left to credit")]
    NothingLeftToCredit,
    #[error("An adjustment is a cancellation or a credit note")]
    NotAnAdjustmentType,
    #[error("Adjustment amount must be between 1 and 1000000000000 cents")]
    InvalidAdjustmentAmount,
    #[error("Reason must be at most 500 characters")]
    ReasonTooLong,
}

impl From<crate::currency::InvalidCurrency> for InvoiceError {
    fn from(_: crate::currency::InvalidCurrency) -> Self {
        InvoiceError::InvalidCurrency
    }
}
