//! Rebuild when a migration is added: `sqlx::migrate!` embeds the folder's
//! files at compile time, and cargo would not notice a new file otherwise.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
