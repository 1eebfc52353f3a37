//! The one HTTP layer of every command (`cat`, `verify` and the `attach` helper, through
//! `mirrors`): HTTPS with rustls, HTTP/2, redirects, proxies, credentials, typed errors.

pub mod client;
pub mod error;
pub mod image_url;
pub mod options;
pub mod proxy;
pub mod tls;

pub use client::Client;
pub use error::FetchError;
pub use image_url::ImageUrl;
pub use options::{Config, Options};
