//! External providers.
