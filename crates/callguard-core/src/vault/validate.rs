//! Validation (filled in by a helper).
