//! Amounts are integer cents of one currency, never a float. Every amount the write model
//! accepts is bounded by [`MAX_AMOUNT_CENTS`], so the sums it makes stay far from `i64`'s
//! limits; they are checked all the same.

/// The largest amount billstream accepts for a line, a document or a payment: ten billion in
/// a currency of two decimals. Larger is a mistake in the request, not a real bill.
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000_000;
