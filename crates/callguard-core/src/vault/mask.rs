//! Masking (filled in by a helper).
