//! Tests: publish_redist.
