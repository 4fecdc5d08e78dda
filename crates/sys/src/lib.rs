//! SYSTEM CALLS: the only crate of the workspace where `unsafe` is allowed (every other crate
//! forbids it through `[workspace.lints]`). Each call sits behind a safe function that checks what
//! the kernel said, with a `// SAFETY:` comment on every `unsafe` block: memory files (`memfd`,
//! sealed and mapped), the page cache (`preadv2(RWF_NOWAIT)`, `cachestat`, `readahead`), socket
//! reads into spare capacity (`recv`) and `sendfile`, scattered file reads (`preadv`), and process limits (`RLIMIT_NOFILE`,
//! `mallopt`).

pub mod memfd;
pub mod page_cache;
pub mod resources;
pub mod socket;
pub mod vectored;
