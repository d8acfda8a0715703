//! No library code: the integration tests are in `tests/` beside this folder; they boot the real image.
