//! Card payments: money and currencies, and the card details a caller types. Card data lives
//! only in memory, in types that wipe themselves on drop and print nothing; what is kept of a
//! card is [`CardSummary`] (brand, last four, expiry), never the number or the CVC.

pub mod card;
pub mod currency;

pub use card::{CardBrand, CardDetails, CardError, CardNumber, CardSummary, Cvc, Expiry};
pub use currency::{Currency, CurrencyError, Money};
