//! Tests: setup.
