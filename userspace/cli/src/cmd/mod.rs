//! One module per subcommand.

pub mod attach;
pub mod cat;
pub mod completions;
pub mod create;
pub mod detach;
pub mod http_args;
pub mod image_args;
pub mod import_cloop;
pub mod man;
pub mod recover;
pub mod serve;
pub mod state;
pub mod status;
pub mod verify;

/// A tokio runtime for the subcommands that do network I/O.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
